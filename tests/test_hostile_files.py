"""Files a snapshot upload can carry are untrusted: what reading them may cost is bounded by
their own size, not by the lengths they declare."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Run in a child process: its peak memory is the figure, and a failure to bound the read
# must not blow up the test process itself.
CHILD = textwrap.dedent(
    """
    import re, resource, struct, sys
    from pathlib import Path
    import faiss, numpy as np
    from tessera.segment.ann_index import HnswIndex

    index = faiss.IndexHNSWFlat(8, 16)
    index.add(np.random.default_rng(0).random((200, 8), dtype=np.float32))
    path = Path(sys.argv[1])
    faiss.write_index(index, str(path))
    data = bytearray(path.read_bytes())
    # The neighbours list's length field (the second place its value appears: the first
    # is the last entry of the offsets before it), set to claim 2 GiB of links.
    count = struct.pack("<Q", index.hnsw.neighbors.size())
    at = [m.start() for m in re.finditer(re.escape(count), bytes(data))][1]
    data[at : at + 8] = struct.pack("<Q", (2 << 30) // 4)
    path.write_bytes(bytes(data))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        HnswIndex.load(path, "Cosine")
    except RuntimeError as exc:
        print("refused:", str(exc).splitlines()[0][:120])
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print("grown_kib", grown)
    """
)


def test_graph_file_declaring_huge_vectors_is_refused_without_allocating(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "graph.faiss")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "refused:" in run.stdout, run.stdout
    grown = int(run.stdout.rsplit("grown_kib", 1)[1])
    assert grown < 256 * 1024, run.stdout  # KiB: the claim was 2 GiB
