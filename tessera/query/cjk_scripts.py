"""Which way Qdrant's `multilingual` tokenizer takes a text with Chinese, Japanese or Thai.

Qdrant counts the letters of each script in the whole text, as the Rust crate whatlang does
(25 scripts by Unicode ranges; ASCII digits, spaces and punctuation are not counted). The
script with the most letters is the main one; when it is Hiragana or Katakana, or Han with
more than 5 % of the Han and kana letters being kana, the text is Japanese and goes whole
through a statistical segmenter (`Route.JAPANESE`); otherwise charabia cuts it (`Route.CHARABIA`).

charabia first cuts a text into groups of one script: a character of no script (digits,
symbols, punctuation) joins the group before it. A Han/kana ("Cj") group is cut at
charabia's separators and each piece is segmented as Chinese, or kept whole when the group
itself reads as Japanese by the rule above; a Thai group's pieces are segmented by
dictionary. A piece of numbers and ASCII punctuation only is never segmented
(`maybe_number`). This module owns the script tables, the route and the groups, and
whatlang's language of an Arabic-script group (`arabic_language`: Arabic, Persian or Urdu,
which charabia segments and folds differently); the segmenters are in `cjk_segment`.
"""

# whatlang's Arabic-script trigram profiles hold letters ruff reads as Latin look-alikes:
# ruff: noqa: RUF001
from __future__ import annotations

import re
import string
import unicodedata
from bisect import bisect_right
from collections import Counter
from enum import Enum
from functools import cache
from itertools import pairwise

from tessera.query.text_chars import data_lines

# whatlang's scripts, in its counting order (the order breaks ties), with their ranges; its
# Cyrillic also claims U+1D2B and U+1D78, inside Latin, which is checked first.
_SCRIPT_RANGES: tuple[tuple[str, str], ...] = (
    ("latin", "0041-005A 0061-007A 0080-024F 0250-02AF 1D00-1DBF 1E00-1EFF 2100-214F "
     "2C60-2C7F A720-A7FF AB30-AB6F"),
    ("cyrillic", "0400-0484 0487-052F 2DE0-2DFF A640-A69D A69F"),
    ("arabic", "0600-06FF 0750-07FF 08A0-08FF FB50-FDFF FE70-FEFF 10E60-10E7F 1EE00-1EEFF"),
    ("mandarin", "2E80-2E99 2E9B-2EF3 2F00-2FD5 3005 3007 3021-3029 3038-303B 3400-4DB5 "
     "4E00-9FCC F900-FA6D FA70-FAD9"),
    ("devanagari", "0900-097F 1CD0-1CFF A8E0-A8FF"),
    ("hebrew", "0590-05FF"),
    ("ethiopic", "1200-139F 2D80-2DDF AB00-AB2F"),
    ("georgian", "10A0-10FF"),
    ("bengali", "0980-09FF"),
    ("hangul", "1100-11FF 3130-318F 3200-32FF A960-A97F AC00-D7AF D7B0-D7FF FF00-FFEF"),
    ("hiragana", "3040-309F"),
    ("katakana", "30A0-30FF"),
    ("greek", "0370-03FF"),
    ("kannada", "0C80-0CFF"),
    ("tamil", "0B80-0BFF"),
    ("thai", "0E00-0E7F"),
    ("gujarati", "0A80-0AFF"),
    ("gurmukhi", "0A00-0A7F"),
    ("telugu", "0C00-0C7F"),
    ("malayalam", "0D00-0D7F"),
    ("oriya", "0B00-0B7F"),
    ("myanmar", "1000-109F"),
    ("sinhala", "0D80-0DFF"),
    ("khmer", "1780-17FF 19E0-19FF"),
    ("armenian", "0530-058F FB13-FB17"),
)  # fmt: skip
SCRIPTS = tuple(name for name, _ in _SCRIPT_RANGES)
_MANDARIN, _HIRAGANA, _KATAKANA = (SCRIPTS.index(s) for s in ("mandarin", "hiragana", "katakana"))
LATIN, THAI = SCRIPTS.index("latin"), SCRIPTS.index("thai")
# charabia's script of Han and kana (one script to it; Armenian is none)
CJ = -2
_ARMENIAN = SCRIPTS.index("armenian")


def _range_table() -> tuple[list[int], list[tuple[int, int]]]:
    spans: list[tuple[int, int, int]] = []
    for index, (_, text) in enumerate(_SCRIPT_RANGES):
        for part in text.split():
            first, _, last = part.partition("-")
            spans.append((int(first, 16), int(last or first, 16), index))
    spans.sort()
    for before, after in pairwise(spans):
        assert before[1] < after[0], "script ranges overlap"
    return [lo for lo, _, _ in spans], [(hi, index) for _, hi, index in spans]


_STARTS, _ENDS = _range_table()
# Characters of these scripts send a text off the plain path (multilingual_tokenizer).
HAS_CJK_OR_THAI = re.compile("[\u0e00-\u0e7f\u2e80-\u2fd5\u3005-\u30ff\u3400-\u9fcc\uf900-\ufad9]")


def whatlang_script(ch: str) -> int | None:
    """The index in `SCRIPTS` of a character's script; None for none or a stop character."""
    cp = ord(ch)
    if cp <= 0x40 or 0x5B <= cp <= 0x60 or 0x7B <= cp <= 0x7E:
        return None
    i = bisect_right(_STARTS, cp) - 1
    if i < 0:
        return None
    hi, index = _ENDS[i]
    return index if cp <= hi else None


class _ScriptCodes(dict[int, str]):
    """A `str.translate` table writing each character as its script's code letter: whatlang's
    scripts as "A".., no script as "."; filled as characters are met."""

    def __missing__(self, cp: int) -> str:
        script = whatlang_script(chr(cp))
        code = "." if script is None else chr(65 + script)
        self[cp] = code
        return code


_CODES = _ScriptCodes()
_CJ_CODES = frozenset(chr(65 + s) for s in (_MANDARIN, _HIRAGANA, _KATAKANA))
_ARMENIAN_CODE = chr(65 + _ARMENIAN)


def script_counts(text: str) -> tuple[list[int], int | None]:
    """Letters per script and the main script (None when no letter counts), as whatlang."""
    codes = text.translate(_CODES)
    counts = [codes.count(chr(65 + s)) for s in range(len(SCRIPTS))]
    top = max(counts)
    if top == 0:
        return counts, None
    leaders = [s for s, n in enumerate(counts) if n == top]
    return counts, leaders[0] if len(leaders) == 1 else _tie_break(codes, leaders)


def _tie_break(codes: str, leaders: list[int]) -> int:
    """whatlang moves a script one place forward each time it counts a letter; among equal
    counts the first in that order leads (Rust's unstable sort may differ, rarely)."""
    order = list(range(len(SCRIPTS)))
    position = list(range(len(SCRIPTS)))
    for code in codes:
        if code == ".":
            continue
        script = ord(code) - 65
        i = position[script]
        if i > 0:
            other = order[i - 1]
            order[i - 1], order[i] = script, other
            position[script], position[other] = i - 1, i
    return min(leaders, key=lambda s: position[s])


def _is_japanese(counts: list[int], main: int | None) -> bool:
    if main in (_HIRAGANA, _KATAKANA):
        return True
    if main != _MANDARIN:
        return False
    kana = counts[_HIRAGANA] + counts[_KATAKANA]
    return kana / (kana + counts[_MANDARIN]) > 0.05


def reads_as_chinese(text: str) -> bool:
    """whatlang's language of a text is Chinese: Han lead, with at most 5 % kana."""
    counts, main = script_counts(text)
    return main == _MANDARIN and not _is_japanese(counts, main)


class Route(Enum):
    PLAIN = "plain"  # no Han, kana or Thai: the plain multilingual path
    CHARABIA = "charabia"
    JAPANESE = "japanese"


def route(text: str) -> Route:
    """How Qdrant's multilingual tokenizer takes a text."""
    if HAS_CJK_OR_THAI.search(text) is None:
        return Route.PLAIN
    counts, main = script_counts(text)
    if main == LATIN:
        return Route.CHARABIA
    return Route.JAPANESE if _is_japanese(counts, main) else Route.CHARABIA


# A script group in the code string: a letter, then the same letter or characters of no
# script (Armenian counts as none to charabia, and Han and kana as one script).
_GROUP = re.compile(r"([^.])(?:\1|\.)*")


def script_groups(text: str) -> list[tuple[int | None, str]]:
    """charabia's script groups of a text: (its script, the text), in order; characters of
    no script join the group before them (the first group, at the start)."""
    codes = text.translate(_CODES).replace(_ARMENIAN_CODE, ".")
    for code in _CJ_CODES:
        codes = codes.replace(code, "#")
    groups: list[tuple[int | None, str]] = []
    for m in _GROUP.finditer(codes):
        start = 0 if not groups else m.start()
        code = m.group(1)
        groups.append((CJ if code == "#" else ord(code) - 65, text[start : m.end()]))
    if not groups:
        return [(None, text)] if text else []
    return groups


@cache
def _separator_split() -> re.Pattern[str]:
    chars = "".join(
        re.escape(chr(int(line, 16))) for line in data_lines("segmentation/separators.tsv")
    )
    return re.compile(f"[{chars}]+")


def separator_pieces(text: str) -> list[str]:
    """The pieces of a group between charabia's separators."""
    return [p for p in _separator_split().split(text) if p]


def maybe_number(piece: str) -> bool:
    """charabia's `maybe_number`: a piece of numeric characters (Rust's `is_numeric`: Nd, Nl,
    No) and ASCII punctuation is kept whole, never given to the group's segmenter. It matters
    when such a piece has a letter-number (`Ⅻ`, the ideographic zero): `我 >Ⅻ$` -> `我`,
    `>xii$`, while jieba would have cut it into characters (`我>Ⅻ$` -> `我`, `xii`)."""
    return all(c in string.punctuation or unicodedata.category(c)[0] == "N" for c in piece)


# ------------------------------------------- whatlang's language of an Arabic-script group
# charabia asks whatlang (0.18, all its languages allowed) the language of each Arabic group:
# Persian gets charabia's Persian folding, Urdu no segmenter (its article stays on). whatlang
# has no alphabet model for the script (Arabic, Urdu and Persian all score 1 on it), so its
# trigram model decides, ties going to the first of Arabic, Urdu, Persian. Its profiles: the
# 300 most frequent trigrams of each language, most frequent first, 3 characters each
# (Persian's hold zero-width non-joiners, U+200C: invisible, yet letters to whatlang).
_ARABIC_PROFILES: dict[str, str] = {
    "ara": (
        " الية  فيالحفي  واوال أوة اأو المالتلحقحق لى كل ان ة والأ لكلكلن اها ق فات مة ون أن ما "
        "اء ته و االعي اشخصي أ أنالإم احري علة لمن الاحقوعلىقوقت اأي رد  شخ لل أيق الا فردرية ول"
        " مند ا كا إلخص وق ا اة أا يل فه انساجتمن يامةكاندة  حقام القة م فرايةسانل شين ن تإنسا ل"
        " لاذا هذان ألة ي ح دوه للك ترالتعاً له إلى عنى اه وع اماعد أاسي حرة عمع الدنون بالحرلعا"
        "ن و، وياتي تالج هذير بالدوللإنعيةالفص ا ويالولأس إنأساساسمايحمارامسيةانومل ي وعاما وتما"
        " متة تعليع بك ا لهة فقانى أول هم البة بساولقاالرلجما كتمتليهلتملمتانت قداد ه أ يجرياق و"
        "ل اا بال يه اعيلدول ولإعلميلمجلأمتع دم تساعملاتهلادرة اة غيرقدموز جوزيجوعاللانمتعمانفيه"
        "اجتم ويد تعلن لر ا يع كلمم مجتتمعدون معتميذلككرايها مسميعإعلعلا تم عاملااعالاجني ليممتس"
        "ييزيم اعتالش تعمييعن تنا بحلماي ييز ود أمملاتأسرشترتي  جمه عر وي إتحدحدة أسعة ي مة، معي"
        "ن ملمسم باق جميلي ميةالضالسلضمضمالفر وسلحماملق مرا ا حنت  تنيته أمإليواجد ولتي مرمرامتح"
        " ذل وأ تحا ف به وم بمويةوليلزو"
    ),
    "urd": (
        "ور  اواور کیکے  کےیں  کاکی  حقے کایٔکا یٔے کویا نے سے  اسٔے میںکو  ہے میے ا انوں  کر ہو"
        "اس ی ار اشخص شخحق  سے جاخص ہر ام ے مں کہیں یاسی ادیآزا آززادص کہ اہے جایا حر شت ککہ م ک"
        " پری کان پر ۔ہردی یٔیس کا جر مہے۔ق ہں ای حو اار ن کقوقکسیحقوری وق ے گ ہیی ج معسان نہ مل"
        " حأی  جونی کرن لیتی ی تنسال ک کہجو انساپنے بنہ  اپیت ا اہ ک کسر کرے ے ہ ایمی ل ہ۔ اے ل"
        "ی شرنےوہ حاصی ممعااصلصل یں۔ویٔنہیملکایسانہات ی بد کی ہ تعکیاق کر ہا مدہ  من بن قوے جیہ "
        "ں ماشرمل  دوعاشقومر بانیوامقوااقولیٔدار وہ و  عای سبر علااد ہ مو تر ن جسے۔ہے، انو دیگی "
        "لیمیوں قا یہدوسے۔ ا ہتعلیم ر پجس ریقے ح اقنیالک  گیین یاد مسلاق، ای نپنےوریم ا باعلییر "
        "ی، انےون ن ار ع بری آر ح رکے پکر گا۔ پیسب  گانا  پویسےرای مراریقاننون ممندگ اعدگیہ و ہر"
        "ر س چاخلاا پق ح بھس م شاہوگے خوسررتیومی بیرکھ متکویر آپوراف  محے سہوںنکہونکت ا طرے عیٔد"
        "د اال ں۔ م ماں  مقغیرپنی امں، من ہو ریعو کذری ذرعام، مدانادااعلمامتما علدیوبھیھی بنیے ی"
        "ا کاویل م زنیاسلانعمل عمت م بچ"
    ),
    "pes": (
        " و  حق باکه ند  که دردر رد  داداراز  ازهر  هریت ر کحق د های د وان  راین ود یا  یارا ارد"
        "ی وکس  کس بر آزباشه بآزاد ک خوه اد بزاد اسار  آنق دشد حقوقوقی بوق ده ه دید ی کو اور ر م"
        "رایاشدخودادیتماری  اجام دی ایدس حاستر او م اند انه  بیبا  هم نممای تاد، ی اانهات ون ایت"
        "ا بست  کنبراانو بش مواین مراسا ملوانر بجتم شو اعن اورد می ایآن  بهو آمللا مماعنی ت ا، ا"
        "ت وئی عی ائیاجتو بهاین می یبشرکندشود من زنن وی، بایی ر مسمل مورز آتواداناریعلاگردیگرکار"
        " گر بدن بت بت می م مقد آشوریه اعی عمر خن ح کشرندمین احن تی د مته مد ش حمو ددیگلامکشوهٔ "
        "ه وانیلی ت ک مجق ممیت کا شداه نون آماد ادااعلد مق وا کمی ی حلل نجا محساسیده قابعیقانر ش"
        "مقاا دهد وی نواگی ساور تبر اً نمیاسیادهاو  او دی هیهیچه‌ا‌هایر خواد تهمها هتی حمادگیبین"
        "ع اسانر وشدهومی عق بعز حشر مند شرٔمیأمتأانتانداویمسارددبهر بمارنیتول مرانو هر دم مرار"
        "عقیسی و تزش  بوا ای نمومجا عمورفتعیت فرندگواهزندم ونماه حا ردیهجاممردت، د رمام تمملینند"
        "المطوری تتخاا تامیاملدد  شخشخص"
    ),
}
# whatlang's trigram constants: distance cap per trigram, and text trigrams ranked
_MAX_TRIGRAM_DISTANCE = 300
_TEXT_TRIGRAMS = 600
# whatlang's stop characters (ASCII digits, spaces and punctuation) read as spaces
_STOP_TO_SPACE = str.maketrans(
    {c: " " for c in (*range(0x41), *range(0x5B, 0x61), *range(0x7B, 0x7F))}
)


@cache
def _arabic_profiles() -> tuple[tuple[str, dict[str, int]], ...]:
    """Each language's profile as its trigrams' positions."""
    return tuple(
        (lang, {text[i : i + 3]: i // 3 for i in range(0, len(text), 3)})
        for lang, text in _ARABIC_PROFILES.items()
    )


def _trigram_ranks(text: str) -> dict[str, int]:
    """whatlang's text profile: each trigram of the lowercased text (stop characters as
    spaces, padded with one), ranked by count, then by the trigram, both descending."""
    chars = text.lower().translate(_STOP_TO_SPACE) + " "
    counts: Counter[str] = Counter()
    c1, c2 = " ", chars[0]
    for c3 in chars[1:]:
        if c2 != " " or (c1 != " " and c3 != " "):
            counts[c1 + c2 + c3] += 1
        c1, c2 = c2, c3
    ranked = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    return {trigram: rank for rank, (trigram, _) in enumerate(ranked[:_TEXT_TRIGRAMS])}


def arabic_language(text: str) -> str:
    """whatlang's language of Arabic-script text: "ara", "urd" or "pes"."""
    ranks = _trigram_ranks(text)
    n = len(ranks)
    if n == 0:
        return "ara"
    cap = _MAX_TRIGRAM_DISTANCE
    # the alphabet weight of whatlang's combined method (its alphabet count is 1 here)
    weight = min(max(-(1 / 300) + 2 / 3, 1 / 3), 2 / 3)
    scores: list[tuple[str, float]] = []
    for lang, profile in _arabic_profiles():
        # each profile trigram is `cap` away when the text lacks it, else the rank difference
        distance = len(profile) * cap + sum(
            abs(rank - profile[t]) - cap for t, rank in ranks.items() if t in profile
        )
        if n < cap:
            distance -= (cap - n) * cap
        distance = min(max(distance, 0), cap * cap)
        trigram_score = (n * cap - distance) / (n * cap)
        scores.append((lang, 1.0 * weight + trigram_score * (1.0 - weight)))
    # the first of the best, as whatlang's sort of three keeps their order
    return max(scores, key=lambda ls: ls[1])[0]
