#!/usr/bin/env python3
"""Writes the valid traces the cases start from, and the bad-input cases
that are binary or not valid UTF-8.

Run from this directory; the outputs are committed, so this is needed only
to change them.  Standard library only (no numpy): the .npy and .mtr
layouts are spelled out here as the readers document them
(workloads/trace-npy.c, workloads/trace-native.c).
"""
import struct
import zlib

# The valid trace every variant starts from: 16 tokens x 2 layers x k=2,
# experts 0..3 (the same as trace/good.json).
T, L, K = 16, 2, 2


def ids(t, l, r):
    return (t + l + r) % 4


def npy(dict_text, data, major=1):
    """A .npy file: magic, version, header length, dict padded to 64."""
    pre = 10 if major == 1 else 12
    hl = len(dict_text) + 1
    total = (pre + hl + 63) // 64 * 64
    text = dict_text + " " * (total - pre - hl) + "\n"
    size = struct.pack("<H", len(text)) if major == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([major, 0]) + size + text.encode() + data


def good_npy_data(fmt="<i", override=None):
    out = bytearray()
    for t in range(T):
        for l in range(L):
            for r in range(K):
                v = ids(t, l, r)
                if override and (t, l, r) in override:
                    v = override[(t, l, r)]
                out += struct.pack(fmt, v)
    return bytes(out)


def shape_dict(shape, descr="<i4"):
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    return "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ---- the valid trace in the text formats -----------------------------------
layers = []
for l in range(L):
    entries = ", ".join("[%d, %d]" % (ids(t, l, 0), ids(t, l, 1)) for t in range(T))
    layers.append('"%d": [%s]' % (l, entries))
write("trace/good.json", ("{" + ", ".join(layers) + "}").encode())
rows = ["token,layer,rank,expert"]
for t in range(T):
    for l in range(L):
        for r in range(K):
            rows.append("%d,%d,%d,%d" % (t, l, r, ids(t, l, r)))
write("trace/good.csv", ("\n".join(rows) + "\n").encode())

# ---- NumPy ----------------------------------------------------------------
write("trace/good.npy", npy(shape_dict((T, L, K)), good_npy_data()))
full = good_npy_data()
write("trace/npy-truncated.npy", npy(shape_dict((T, L, K)), full[: len(full) - 10]))
write("trace/npy-float.npy",
      npy(shape_dict((T, L, K), "<f4"), b"".join(struct.pack("<f", 1.0) for _ in range(T * L * K))))
write("trace/npy-1d.npy", npy(shape_dict((T * L * K,)), full))
write("trace/npy-negative-id.npy", npy(shape_dict((T, L, K)), good_npy_data(override={(3, 1, 0): -1})))
write("trace/npy-id-too-large.npy",
      npy(shape_dict((T, L, K)), good_npy_data(override={(5, 0, 1): 40000})))
write("trace/npy-bad-header.npy",
      npy("{'descr': '<i4', 'fortran_order': Maybe, 'shape': (16, 2, 2), }", full))
# A shape of 10^12 tokens: 16 TB of ids declared, 256 bytes present.
write("trace/npy-huge-shape.npy", npy(shape_dict((10 ** 12, L, K)), full))
write("trace/npy-version.npy", b"\x93NUMPY\x09\x00" + npy(shape_dict((T, L, K)), full)[8:])
hdr = bytearray(npy(shape_dict((T, L, K)), full))
hdr[8:10] = struct.pack("<H", 60000)  # header length past the end of the file
write("trace/npy-header-past-eof.npy", bytes(hdr))
# A Latin-1 byte in a header key (found by tests/fuzz: the message echoed
# the key's raw bytes, which are not UTF-8).
write("trace/npy-non-ascii-key.npy", npy(shape_dict((T, L, K)), full).replace(b"descr", b"d\xe9sc", 1))

# ---- moesim native .mtr ---------------------------------------------------
MAGIC = b"\x89MTRACE\n"


def align(v):
    return (v + 63) // 64 * 64


def mtr(tokens=T, layers=L, k=K, experts=4, version=1, id_override=None, fix_header_crc=True,
        section_crc_delta=0, file_bytes_delta=0, payload=None):
    """A one-section (ids only) .mtr file laid out as trace-native.c says."""
    if payload is None:
        cells = []
        for l in range(L):
            for t in range(T):
                for r in range(K):
                    v = ids(t, l, r)
                    if id_override and (t, l, r) in id_override:
                        v = id_override[(t, l, r)]
                    cells.append(v)
        payload = b"".join(struct.pack("<h", v) for v in cells)
    sec_bytes = tokens * layers * k * 2
    header_bytes = 64 + 24
    offset = align(header_bytes)
    body = payload + b"\0" * (align(len(payload)) - len(payload))
    file_bytes = offset + len(body) + file_bytes_delta
    crc = (zlib.crc32(payload) + section_crc_delta) & 0xFFFFFFFF
    h = bytearray(64 + 24)
    h[0:8] = MAGIC
    struct.pack_into("<IIQIIIIIIQII", h, 8, version, header_bytes, tokens, layers, k, experts, 0,
                     1, 1, file_bytes, 0, 0)
    struct.pack_into("<IIQQ", h, 64, 1, crc, offset, sec_bytes)
    if fix_header_crc:
        struct.pack_into("<I", h, 60, zlib.crc32(bytes(h)) & 0xFFFFFFFF)
    return bytes(h) + b"\0" * (offset - header_bytes) + body


write("trace/good.mtr", mtr())
write("trace/mtr-header-crc.mtr", mtr(fix_header_crc=False))
write("trace/mtr-truncated.mtr", mtr()[:100])
write("trace/mtr-version.mtr", mtr(version=7))
# 2^40 tokens declared with an intact header checksum: the section table
# then disagrees with the dimensions, before anything is allocated.
write("trace/mtr-huge-tokens.mtr", mtr(tokens=1 << 40))
write("trace/mtr-id-out-of-range.mtr", mtr(id_override={(2, 1, 1): 9}))
write("trace/mtr-section-crc.mtr", mtr(section_crc_delta=1))

# ---- text files with bytes that are not UTF-8 -----------------------------
write("run/non-utf8.ini",
      b"[engine]\ninclude = base.ini\n# caf\xe9 (Latin-1, not UTF-8)\nscheme = baseline-ep\n")
write("topo/non-utf8.ini", b"[topology]\nname = node\xff\nbuilder = nvswitch\ngpus = 4\n")
write("trace/json-non-utf8.json", b'{"0": [[0, 1], [\xff, 2]], "1": [[1, 2], [2, 3]]}')
write("trace/csv-non-utf8.csv", b"token,layer,rank,expert\n0,0,0,1\n0,0,1,\xe92\n")
write("flows/non-utf8.csv", b"id,src,dst,bytes,start_s\na,0,1,1e6,0\nb\xc3,1,2,1e6,0\n")
