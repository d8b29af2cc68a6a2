"""Small real PDFs for the post-processing tests, written byte by byte (no PDF library).

`make_pdf` gives a valid PDF with text on every page, an Info dictionary and,
on request, an unreferenced binary stream of `padding` bytes (a large PDF
whose text stays small, like a scanned paper with one big image).
"""

from __future__ import annotations

import hashlib


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(title: str, pages: int = 1, words_per_page: int = 30, padding: int = 0,
             width: int = 612, height: int = 792, info: bool = True) -> bytes:
    objects: dict[int, bytes] = {}
    kids = []
    for i in range(pages):
        page_num, content_num = 10 + 2 * i, 11 + 2 * i
        kids.append(f"{page_num} 0 R")
        words = [f"word{i}x{j}" for j in range(words_per_page)]
        lines = [" ".join(words[k:k + 8]) for k in range(0, len(words), 8)]
        ops = ["BT", "/F1 10 Tf", "14 TL", f"72 {height - 72} Td"]
        if i == 0:
            ops.append(f"({_esc(title)}) '")
        ops += [f"({_esc(line)}) '" for line in lines]
        ops.append("ET")
        stream = ("\n".join(ops) + "\n").encode("latin-1")
        objects[page_num] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] "
                             f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_num} 0 R >>"
                             ).encode()
        objects[content_num] = f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream"
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {pages} >>".encode()
    objects[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    objects[4] = (f"<< /Title ({_esc(title)}) /Author (Ada Standin) /Producer (tests/pdfs.py) "
                  f"/CreationDate (D:20170706005950Z) >>").encode("latin-1")
    if padding:
        seed = hashlib.sha256(title.encode()).digest()
        blob = (seed * (padding // len(seed) + 1))[:padding]
        objects[5] = f"<< /Length {padding} >>\nstream\n".encode() + blob + b"\nendstream"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += f"{num} 0 obj\n".encode() + objects[num] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    for num in range(1, size):
        if num in offsets:
            out += f"{offsets[num]:010d} 00000 n \n".encode()
        else:
            out += b"0000000000 65535 f \n"
    trailer_info = " /Info 4 0 R" if info else ""
    out += f"trailer\n<< /Size {size} /Root 1 0 R{trailer_info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def encrypted_pdf(user_password: str = "secret", owner_password: str = "owner") -> bytes:
    """A PDF encrypted by pypdf (needs `user_password` to open unless it is empty)."""
    import io

    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(width=612, height=792)
    w.encrypt(user_password, owner_password)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def no_pages_pdf() -> bytes:
    """A well-formed PDF whose page tree is empty."""
    body = bytearray(b"%PDF-1.4\n")
    o1 = len(body)
    body += b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    o2 = len(body)
    body += b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    xref = len(body)
    body += f"xref\n0 3\n0000000000 65535 f \n{o1:010d} 00000 n \n{o2:010d} 00000 n \n".encode()
    body += f"trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(body)
