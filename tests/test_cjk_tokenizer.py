"""The `multilingual` tokenizer on Chinese, Japanese and Thai, against Qdrant Edge.

Qdrant segments Chinese with jieba's dictionary, Japanese with vaporetto's model and Thai with
charabia's dictionary, and routes a text by the scripts it holds (`tessera.query.cjk_scripts`,
`cjk_segment`). On sentences of each language (simplified and traditional Chinese, Japanese
of kanji, kana and katakana loanwords, Thai), on mixtures of them with other scripts and on
random strings, the BM25 vectors (so the tokens, with repeats) and the full-text matches
Tessera makes must equal Qdrant Edge's.
"""

# The sentences hold CJK punctuation, full-width by nature:
# ruff: noqa: RUF001
from __future__ import annotations

import hashlib
import random
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tessera.query import cjk_segment
from tessera.query.bm25 import Bm25
from tessera.query.multilingual_tokenizer import multilingual_words
from tessera.query.text_tokenizer import Tokenizer
from tests.test_bm25 import edge_config
from tests.test_full_text import edge_matchers, tessera_matcher

edge = pytest.importorskip("qdrant_edge")

CHINESE_SIMPLIFIED = """\
我们今天去公园散步，天气非常好。
中华人民共和国成立于一九四九年。
他在北京大学学习计算机科学与技术。
这个问题需要我们认真研究和讨论。
人工智能正在改变我们的生活方式。
请问去火车站怎么走？
研究生命的起源是一个复杂的科学问题。
南京市长江大桥是一座著名的桥梁。
经济发展和环境保护应该同时进行。
向量数据库可以快速检索相似的文档。
全文搜索引擎使用倒排索引来提高查询速度。
下雨天留客天留我不留。
结婚的和尚未结婚的都来了。
乒乓球拍卖完了。
我从2025年开始学习Rust语言。
北京、上海、广州和深圳是中国的一线城市。
人民的意志是政府权力的基础，这一意志应以定期的和真正的选举予以表现。
夏天，像是哼着小曲的少年，恶作剧般在大地上洒满每一种灿烂的颜色。
Python（派森）语言是一种功能强大而完善的通用型计算机程序设计语言。
他毕业于清华大学，现在是一名软件工程师。"""

CHINESE_TRADITIONAL = """\
我們今天去公園散步，天氣非常好。
臺灣的夜市有很多好吃的小吃。
他在國立臺灣大學學習資訊工程。
人工智慧正在改變我們的生活方式。
香港是一個國際金融中心。
這家餐廳的飯菜又便宜又好吃。
全文搜尋引擎使用倒排索引來提高查詢速度。
學生們在教室裡認真地聽老師講課。
人人生而自由﹐在尊嚴和權利上一律平等。
他們賦有理性和良心﹐並應以兄弟關係的精神互相對待。
如何在 Python 中使用既有的 C library?
在資訊科技快速發展的今天, 開發及測試軟體的速度是不容忽視的課題.
電腦軟體的開發需要大量的測試。"""

JAPANESE = """\
私は毎朝コーヒーを飲みます。
東京都に住んでいます。
日本語のテキストです。Qdrantのコードで単体テストで使用されています。
これはテストです
ガイドブックをダウンロードしてください。
昨日、友達と一緒に映画を見に行きました。
インターネットで新しいパソコンを買いました。
スマートフォンのアプリケーションを開発しています。
富士山は日本で一番高い山です。
京都には古いお寺がたくさんあります。
データベースのインデックスを作成しました。
新幹線で大阪まで行きました。
ベクトル検索エンジンは類似した文書を高速に見つけることができます。
アイスクリームとチョコレートケーキが大好きです。
すもももももももものうち。
吾輩は猫である。名前はまだ無い。
エレベーターが故障しているので、階段を使ってください。
Python の開発は、1990 年ごろから開始されています。
開発者の Guido van Rossum は教育用のプログラミング言語「ABC」の開発に参加していました。
ＡＢＣとｶﾀｶﾅの全角半角、々と〇とヶも混ざったテキスト。"""

THAI = """\
ภาษาไทยง่ายนิดเดียว ไก่ขันตอนเช้าบนขันน้ำ ฉันสระผมที่สระน้ำด้วยน้ำยาสระผม 123 456
ฉันชอบกินข้าวผัดกับไข่ดาว
กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย
เขากำลังเรียนภาษาอังกฤษที่มหาวิทยาลัย
คอมพิวเตอร์ของฉันเสียต้องซ่อมแล้ว
ตลาดน้ำดำเนินสะดวกเป็นสถานที่ท่องเที่ยวที่มีชื่อเสียง
ฐานข้อมูลเวกเตอร์ช่วยค้นหาเอกสารที่คล้ายกันได้อย่างรวดเร็ว
เด็กๆ เล่นฟุตบอลกันที่สนามหญ้า
ผมจะไปเชียงใหม่พรุ่งนี้ครับ ปี2567
ทุกคนควรออกกำลังกายอย่างสม่ำเสมอ"""

LANGUAGES = {
    "chinese-simplified": CHINESE_SIMPLIFIED.splitlines(),
    "chinese-traditional": CHINESE_TRADITIONAL.splitlines(),
    "japanese": JAPANESE.splitlines(),
    "thai": THAI.splitlines(),
}
OTHER_WORDS = [
    "The", "quick", "brown", "fox", "Qdrant", "vectors", "search", "café", "naïve", "Straße",
    "TESTING", "3.14", "x_y", "camelCase", "Привет", "Ελληνικά",
]  # fmt: skip
# Characters of every kind the routing and the segmenters tell apart.
POOL = (
    "的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里後見聞書読語電車駅"
    "あいうえおかきくけこがぎぐさしすたちつてでとなにのはばぱまみむやゆよらりるれろわをんっー"
    "アイウエオカキクケコガサシスセタチツテトナニハバパマミラリルレロンッー・"
    "กขคงจฉชซดตถทนบปผพมยรลวสหอะาิีึืุูเแโใไ่้๊๋ั็์ำๆ"
    "abcXYZ019 ,.。、！？「」（）-_'ＡＢＣ１ｱｲ々〇ヶ〜"
)  # fmt: skip


def mixtures(seed: int, n: int) -> list[str]:
    """Slices of the sentences of all languages run together, with words of other scripts."""
    rng = random.Random(seed)
    sentences = [s for lines in LANGUAGES.values() for s in lines]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(2, 5)):
            if rng.random() < 0.4:
                parts.append(" ".join(rng.choice(OTHER_WORDS) for _ in range(rng.randint(1, 4))))
            else:
                s = rng.choice(sentences)
                i = rng.randrange(len(s))
                parts.append(s[i : i + rng.randint(2, 24)])
        out.append(rng.choice(["", " ", "，", "、", "。", " - ", "「"]).join(parts))
    return out


def random_strings(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(POOL) for _ in range(rng.randint(1, 40))) for _ in range(n)]


def thai_word_runs(seed: int, n: int) -> list[str]:
    """Runs of Thai dictionary words: the longest-match segmentation meets ambiguities."""
    rng = random.Random(seed)
    words = sorted(cjk_segment._thai_dictionary()[0])
    return ["".join(rng.choice(words) for _ in range(rng.randint(2, 9))) for _ in range(n)]


def chinese_word_runs(seed: int, n: int) -> list[str]:
    """Runs of the Chinese sentences' words, in another order."""
    rng = random.Random(seed)
    lines = CHINESE_SIMPLIFIED.splitlines() + CHINESE_TRADITIONAL.splitlines()
    words = sorted({w for s in lines for w in cjk_segment.chinese_words(s) if len(w) > 1})
    return ["".join(rng.choice(words) for _ in range(rng.randint(2, 10))) for _ in range(n)]


def corpus() -> list[str]:
    texts = [s for lines in LANGUAGES.values() for s in lines]
    texts += mixtures(1, 150) + random_strings(2, 150)
    return texts + thai_word_runs(3, 60) + chinese_word_runs(4, 60)


def test_segmentations_of_qdrant_and_charabia() -> None:
    """The examples of Qdrant's and charabia's own tests."""
    qdrant_example = "日本語のテキストです。Qdrantのコードで単体テストで使用されています。"
    assert multilingual_words(qdrant_example) == [
        "日本", "語", "の", "テキスト", "です", "Qdrant", "の", "コード", "で", "単体", "テスト",
        "で", "使用", "さ", "れ", "て", "い", "ます",
    ]  # fmt: skip
    assert multilingual_words("これはテストです") == ["これ", "は", "テスト", "です"]
    # Chinese: jieba's words, variants folded (学习 -> 學習, 语言 -> 語言), digits dropped
    assert multilingual_words("我从2025年开始学习Rust语言。") == [
        "我", "从", "年", "开始", "學習", "rust", "語言",
    ]  # fmt: skip
    assert multilingual_words("人民的意志是政府权力的基础") == [
        "人民", "的", "意志", "是", "政府", "权力", "的", "基礎",
    ]  # fmt: skip
    # Thai: dictionary words, without their nonspacing vowel and tone marks
    assert multilingual_words("ภาษาไทยง่ายนิดเดียว ไก่ขันตอนเช้าบนขันน้ำ") == [
        "ภาษาไทย", "งาย", "นดเดยว", "ไก", "ขน", "ตอนเชา", "บน", "ขนนา",
    ]  # fmt: skip
    # a Japanese phrase in a mostly Latin text is cut by charabia: kept whole, decomposed
    assert multilingual_words("Latin text with more letters than 東京です") == [
        "latin", "text", "with", "more", "letters", "than", "東京て\u3099す",
    ]  # fmt: skip


BM25_CONFIGS: list[dict[str, Any]] = [
    {"tokenizer": "multilingual", "stopwords": {"custom": []}, "stemmer": {"type": "none"}},
    {"tokenizer": "multilingual"},
    {"tokenizer": "multilingual", "language": "chinese"},
    {"tokenizer": "multilingual", "language": "japanese", "ascii_folding": True},
    {"tokenizer": "multilingual", "min_token_len": 2, "max_token_len": 4},
    {"tokenizer": "multilingual", "stopwords": {"custom": ["の", "的", "Testing", "ที่"]}},
]


@pytest.mark.parametrize("options", BM25_CONFIGS, ids=[str(c) for c in BM25_CONFIGS])
def test_bm25_vectors_equal_qdrant_edge(options: dict[str, Any]) -> None:
    ours = Bm25.from_options(options)
    theirs = edge.Bm25(edge_config(options))
    for text in corpus():
        want = theirs.embed_document(text)
        indices, values = ours.embed_document(text)
        assert sorted(want.indices) == indices, text
        by_index = dict(zip(want.indices, want.values, strict=True))
        assert values == pytest.approx([by_index[i] for i in indices], rel=1e-6), text


def test_tokens_of_each_language_equal_qdrant_edge() -> None:
    """Token multisets, language by language (the figures the tokenizer's docstring gives)."""
    options = BM25_CONFIGS[0]
    ours = Bm25.from_options(options)
    theirs = edge.Bm25(edge_config(options))
    for language, lines in LANGUAGES.items():
        for text in lines:
            want = theirs.embed_document(text)
            assert sorted(want.indices) == ours.embed_document(text)[0], (language, text)


def queries_of(docs: list[str], seed: int) -> list[str]:
    """Words and phrases of the documents as Tessera tokenizes them, and some that are not."""
    rng = random.Random(seed)
    tokenizer = Tokenizer(kind="multilingual")
    queries = []
    for _ in range(40):
        doc = rng.choice(docs)
        words = multilingual_words(doc)
        if words and rng.random() < 0.7:
            i = rng.randrange(len(words))
            queries.append("".join(words[i : i + rng.randint(1, 3)]))
        else:
            i = rng.randrange(len(doc))
            queries.append(doc[i : i + rng.randint(1, 8)])
    return [q for q in queries if tokenizer.doc_words(q) or rng.random() < 0.2]


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_matches_equal_qdrant_edge(tmp_path: Path, language: str) -> None:
    docs = LANGUAGES[language] + mixtures(len(language), 20)
    queries = queries_of(docs, len(language))
    all_params: list[dict[str, Any] | None] = [
        {"tokenizer": "multilingual"},
        {"tokenizer": "multilingual", "stopwords": {"languages": ["chinese", "japanese"]}},
    ]
    shard, matchers = edge_matchers(tmp_path, docs, all_params)
    try:
        for params, theirs in zip(all_params, matchers, strict=True):
            ours: Callable[[str, str], list[int]] = tessera_matcher(docs, params)
            for query in queries:
                for kind in ("text", "text_any", "phrase"):
                    assert ours(kind, query) == theirs(kind, query), (params, kind, query)
    finally:
        shard.close()


# Qdrant's own check of the model it embeds (lib/segment/src/.../tokenizers/japanese.rs)
QDRANT_MODEL_SHA512 = bytes([
    34, 108, 156, 130, 7, 199, 31, 24, 147, 156, 119, 202, 98, 129, 109, 101, 114, 8, 250, 182,
    159, 28, 112, 122, 214, 50, 51, 191, 118, 112, 143, 237, 70, 15, 96, 45, 78, 76, 90, 62, 178,
    14, 86, 194, 87, 33, 19, 79, 55, 50, 212, 99, 98, 65, 102, 171, 123, 150, 110, 229, 88, 224,
    43, 203,
])  # fmt: skip


def test_japanese_model_is_qdrants() -> None:
    model = cjk_segment._data_bytes("bccwj-suw_c1.0.model.xz")
    assert hashlib.sha512(model).digest() == QDRANT_MODEL_SHA512


def test_dictionaries_load_only_when_needed() -> None:
    """Latin text loads nothing; Chinese loads jieba only, Thai and Japanese their own."""
    script = """
import sys
from tessera.query import cjk_segment as s
from tessera.query.multilingual_tokenizer import multilingual_words as words
def loaded():
    return [n for n, f in [("jieba", s._jieba), ("thai", s._thai_dictionary),
            ("vaporetto", s._vaporetto)] if f.cache_info().currsize] + sorted(
            m for m in ("rjieba", "vaporetto") if m in sys.modules)
words("The quick brown fox, café Straße"); print(loaded())
words("人工智能正在改变我们的生活方式"); print(loaded())
words("ฉันชอบกินข้าวผัด"); print(loaded())
words("私は毎朝コーヒーを飲みます"); print(loaded())
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "[]",
        "['jieba', 'rjieba']",
        "['jieba', 'thai', 'rjieba']",
        "['jieba', 'thai', 'vaporetto', 'rjieba', 'vaporetto']",
    ]


# Symbols, emoji and scripts charabia treats unlike a Unicode word: the symbols it keeps
# inside a word or decomposes into letters (U+2100..214F: `№` -> `no`, `™` -> `tm`), ASCII
# symbols that are not its separators (`$`, `|`, `^`), emoji, marks it keeps or drops, controls,
# full-width Latin (its "Hangul": never lowercased by charabia), Armenian, Arabic and Greek.
SYMBOL_TEXTS = [
    "№5 and ™ Hello™ A™B ℌello ℃ ℡ ⅓cup Ⅻ ①-a a①b x² a½b",
    "price$5 a|b x^2 a<b a=b a~b C++ e=mc² 29.3°F",
    "hello😀world I❤NY 👍🏽ok ab😀cd 😀 🇫🇷x caf\u00e9☕",
    "ＡＢＣ Ｔｅｓｔ ｔｅｓｔ１２３ ＡＢＣとｶﾀｶﾅ",
    "ab\rcd line\r\nnext a\x01b a\x0bb Привет\rмир",
    "ab\u1ab0cd ab\u1de7cd ab\u0301cd ab\u3300cd ab\u0eb1cd",
    "Հայաստան ԱԲԳ abcԱբdef Հայ一աս",
    "ٱلحمد الحمــد أل كتاب😀الكتاب ﷲ كتاب\u200cكتاب",
    "αβς αβςγ ςαβ ΑΒΣ ΛΟΓΟΣ ℿ⅀ σοφός",
    "ภาษา\u0363ไทย ภาษา\u0eb3ไทย Ⅳ世紀",
]
# (with Han: a piece of numbers and ASCII punctuation next to it is kept whole, `我+>Ⅻ$`)
_SYMBOL_POOL = (
    "abcXYZ €$|^~<=>+ №™℃ℌ⅓Ⅻ①²½😀❤👍🏽☕🇫 ＡＢｃ１ｱ Հայ αβςΣ الحمدـ ภาษา 我中〇 "
    "\u0301\u1ab0\u3099\r\x01-.,"
)


def symbol_strings(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_SYMBOL_POOL) for _ in range(rng.randint(1, 30))) for _ in range(n)]


@pytest.mark.parametrize("lowercase", [True, False])
def test_symbols_emoji_and_case_equal_qdrant_edge(lowercase: bool) -> None:
    options = {**BM25_CONFIGS[0], "lowercase": lowercase}
    ours = Bm25.from_options(options)
    theirs = edge.Bm25(edge_config(options))
    for text in SYMBOL_TEXTS + symbol_strings(5, 400):
        want = theirs.embed_document(text)
        assert sorted(want.indices) == ours.embed_document(text)[0], text


def test_symbols_and_emoji_stay_in_words() -> None:
    assert multilingual_words("№5 Hello™ a$b I❤NY hello😀world 😀 123") == [
        "no5", "hellotm", "a$b", "i❤ny", "hello😀world",
    ]  # fmt: skip


@pytest.mark.parametrize("template", ["ab{}cd", "αβ{}γδ", "سل{}ام", "ภาษา{}ไทย", "Հայ{}աս"])
def test_every_character_inside_a_word_equals_qdrant_edge(template: str) -> None:
    """Each character of the Basic Multilingual Plane between letters: separators, symbols,
    emoji, marks, controls, other scripts. Characters this Python's Unicode does not know yet
    (newer than its version) are left out."""
    options = {**BM25_CONFIGS[0], "lowercase": False}
    ours = Bm25.from_options(options)
    theirs = edge.Bm25(edge_config(options))
    bad = []
    for cp in [*range(0xD800), *range(0xE000, 0x10000)]:
        ch = chr(cp)
        if unicodedata.category(ch) == "Cn":
            continue
        text = template.format(ch)
        if sorted(theirs.embed_document(text).indices) != ours.embed_document(text)[0]:
            bad.append(f"{cp:04X}")
    assert bad == []


# ------------------------------------------------------------------ differential fuzz
# Han next to ASCII symbols and punctuation, as Qdrant cuts it: a piece between separators
# holding only numbers and ASCII punctuation is never segmented (charabia's `maybe_number`),
# so a letter-number keeps its symbols (`>Ⅻ$`); with Han in the piece jieba cuts it.
SYMBOLS_NEXT_TO_HAN = {
    "中文!": ["中文"],
    "abc中文": ["abc", "中文"],
    "中文-英文": ["中文", "英文"],
    "１２３中文": ["中文"],
    "中文@example.com": ["中文", "example", "com"],
    "中文(测试)": ["中文", "測試"],
    "我+>Ⅻ$": ["我", ">XII$"],
    "我>Ⅻ$": ["我", "XII"],
    "我 ⅫⅫ$ 〇〇": ["我", "XIIXII$", "〇〇"],
    "我 😀Ⅻ$": ["我", "XII"],
    "ก+>Ⅻ$": ["ก", ">XII$"],
}
# Arabic-script groups as whatlang reads them: Arabic (article cut off), Persian (article cut
# off, `ك`/`ي`/`ى` folded to `ک`/`ی`, Persian digits to ASCII), Urdu (kept whole).
ARABIC_SCRIPT = {
    "الكتاب على الطاولة": ["ال", "كتاب", "علي", "ال", "طاوله"],
    "علي": ["علي"],
    "من كتاب را مي خوانم": ["من", "کتاب", "را", "می", "خوانم"],
    "سلام ك": ["سلام", "ک"],
    "فارسی ۱۲ك خانه\u200cی": ["فارسی", "12ک", "خانه", "ی"],
    "الكتاب را مي خوانم": ["ال", "کتاب", "را", "می", "خوانم"],
    "یہ الکتاب بہت اچھی ہے": ["یہ", "الکتاب", "بہت", "اچھی", "ہے"],
}
ARABIC_SENTENCES = """\
من كتاب را مي خوانم و اين يك جمله فارسي است
زبان فارسی یکی از زبان‌های هندواروپایی است که در ایران و افغانستان صحبت می‌شود
تهران پايتخت ايران است و ۱۲ ميليون نفر جمعيت دارد
خانه‌ی ما در کوچه‌ی بزرگی است
اردو پاکستان کی قومی زبان ہے اور یہ الکتاب بہت اچھی ہے
یہ ایک اردو جملہ ہے جس میں الفاظ ہیں
اللغة العربية هي لغة رسمية في كل دول الوطن العربي
يولد جميع الناس أحرارا متساوين في الكرامة والحقوق
كيف حالك يا صديقي؟ أنا بخير
هذا الكتاب جميل جدا وأنا أحبه كثيرا""".splitlines()


def test_symbols_next_to_han_and_arabic_script_languages() -> None:
    for text, words in {**SYMBOLS_NEXT_TO_HAN, **ARABIC_SCRIPT}.items():
        assert multilingual_words(text) == words, text


def arabic_script_mixtures(seed: int, n: int) -> list[str]:
    """Slices of Arabic, Persian and Urdu sentences run together (whatlang reads each group)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 5)):
            s = rng.choice(ARABIC_SENTENCES)
            i = rng.randrange(len(s))
            parts.append(s[i : i + rng.randint(1, 60)])
        out.append(rng.choice([" ", "", "، ", ". ", " Ⅻ ", " 中文 "]).join(parts))
    return out


# The fuzz's classes of characters, and whole words that make a script read as a language.
FUZZ_CLASSES = [
    "的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里後見聞書読語電車駅学习",
    "あいうえおかきくけこがのはでアイウエオカキテストー・ｱｲ",
    "한국어안녕하세요ㄱㅏ",
    "กขคงจภาษาไทยง่ายิ์",
    "السلامعليكمكتابيكيكیکفارسیزبانپچژگ",
    "ہےںٹڈڑۀى\u200c\u064e\u0640ة",
    "abcXYZéüß",
    "0123456789",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "ＡＢｃ１２３！（）＠＃％，。、「」～",
    "  \t\n\u3000",
    "😀❤👍🏽☕🇫",
    "ⅫⅣ〇①²½۱۲٣",
]
FUZZ_WORDS = [
    "الكتاب", "كتاب", "فارسی", "یک", "می", "است", "این", "را", "که", "در", "اردو", "ہے", "کی",
    "میں", "علي", "في", "من", "على", "الى", "جامعة", "中文", "我们", "東京です", "ภาษาไทย",
    "hello", "Ⅻ", "$", ">", "123", "。",
]  # fmt: skip


def fuzz_strings(seed: int, n: int) -> list[str]:
    """Random strings of a few character classes each, or runs of words with symbols."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.3:
            joint = rng.choice(["", " ", "  "])
            tails = ["", "", " ", ".", "$", "Ⅻ", "،"]
            words = (rng.choice(FUZZ_WORDS) + rng.choice(tails) for _ in range(rng.randint(1, 8)))
            out.append(joint.join(words))
            continue
        classes = rng.sample(FUZZ_CLASSES, rng.randint(2, 5))
        chars = []
        for _ in range(rng.randint(1, 24)):
            ch = rng.choice(rng.choice(classes))
            chars.append(ch if rng.random() < 0.8 else ch * rng.randint(2, 3))
        out.append("".join(chars))
    return out


def test_differential_fuzz_equals_qdrant_edge() -> None:
    """Seeded random strings mixing every script the routing, the segmenters and whatlang's
    readings tell apart: the BM25 vectors (tokens with their counts) equal Qdrant Edge's."""
    options = BM25_CONFIGS[0]
    ours = Bm25.from_options(options)
    theirs = edge.Bm25(edge_config(options))
    texts = [*SYMBOLS_NEXT_TO_HAN, *ARABIC_SCRIPT, *ARABIC_SENTENCES]
    texts += fuzz_strings(6, 1500) + arabic_script_mixtures(7, 300)
    bad = []
    for text in texts:
        want = theirs.embed_document(text)
        indices, values = ours.embed_document(text)
        by_index = dict(zip(want.indices, want.values, strict=True))
        if sorted(want.indices) != indices or values != pytest.approx(
            [by_index[i] for i in indices], rel=1e-6
        ):
            bad.append(text)
    assert bad == []
