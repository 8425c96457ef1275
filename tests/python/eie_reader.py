"""An independent reader of eie-compress output, written from docs/format.md alone.

    python3 tests/python/eie_reader.py OUT_DIR

Parses OUT_DIR/model.eie (section 6) and every image named by OUT_DIR/manifest.json
(sections 4 and 5), checks that both say the same thing, decodes every layer to its dense
matrix (sections 2 and 3) and prints JSON: {"layers": [{"name", "rows", "cols", "pes",
"codebook", "dense": [[...]], "pe": [{"codes", "z", "ptr"}]}]}. Standard library only.
The integration test `python_reader_agrees_with_the_tool` runs it.
"""

import hashlib
import json
import os
import struct
import sys


class Payload:
    """bincode 2, little-endian, fixed-width integers, u64 lengths."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, fmt):
        value = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return value[0] if len(value) == 1 else value

    def string(self):
        n = self.take("Q")
        s = self.data[self.at:self.at + n].decode("utf-8")
        self.at += n
        return s

    def option(self, read):
        tag = self.take("B")
        assert tag in (0, 1), tag
        return read() if tag == 1 else None

    def vec(self, read):
        return [read() for _ in range(self.take("Q"))]


def read_bundle(path):
    data = open(path, "rb").read()
    assert data[:8] == b"EIEBNDL\0", "magic"
    version, flags, length = struct.unpack_from("<IIQ", data, 8)
    assert (version, flags) == (2, 0), (version, flags)
    assert len(data) == 56 + length, "length"
    assert hashlib.sha256(data[56:]).digest() == data[24:56], "checksum"
    p = Payload(data[56:])
    bundle = {
        "tool_version": p.string(),
        "source_name": p.string(),
        "source_sha256": p.option(lambda: bytes(p.take("32B")).hex()),
        "pointer_bits": p.take("B"),
        "settings": p.vec(lambda: (p.string(), p.string())),
    }

    def layer():
        l = {"name": p.string(), "bias": p.option(p.string), "span": p.option(lambda: (p.take("Q"), p.take("Q"))),
             "rows": p.take("Q"), "cols": p.take("Q"),
             "code_bits": p.take("B"), "index_bits": p.take("B"), "codebook_len": p.take("I"),
             "codebook_frac_bits": p.take("B"), "codebook": p.vec(lambda: p.take("f")),
             "codebook_fixed": p.vec(lambda: p.take("h"))}
        l["pe"] = p.vec(lambda: {"codes": p.vec(lambda: p.take("B")), "z": p.vec(lambda: p.take("B")),
                                 "ptr": p.vec(lambda: p.take("I"))})
        return l

    bundle["layers"] = p.vec(layer)
    assert p.at == len(p.data), "trailing payload bytes"
    return bundle


def words(path, entry, word_bits):
    raw = open(path, "rb").read()
    assert hashlib.sha256(raw).hexdigest() == entry["sha256"], path
    if entry["encoding"] == "binary":
        width = word_bits // 8
        return [int.from_bytes(raw[i:i + width], "little") for i in range(0, len(raw), width)]
    lines = raw.decode("ascii").split("\n")
    assert lines[-1] == "" and all(len(x) == word_bits // 4 for x in lines[:-1]), path
    return [int(x, 16) for x in lines[:-1]]


def read_images(out_dir, manifest, layer_manifest):
    files = {}
    for f in layer_manifest["files"]:
        files.setdefault((f["kind"], f["pe"]), {})[f["encoding"]] = f
    def image(kind, pe):
        pair = files[(kind, pe)]
        got = [words(os.path.join(out_dir, f["path"]), f, f["word_bits"]) for f in (pair["binary"], pair["readmemh"])]
        assert got[0] == got[1], (kind, pe)
        return got[0]
    code_bits, index_bits = layer_manifest["code_bits"], layer_manifest["index_bits"]
    entry_bits = code_bits + index_bits
    per_word = 64 // entry_bits
    fixed = [w - 65536 if w >= 32768 else w for w in image("codebook", None)]
    pes = []
    for k in range(layer_manifest["pes"]):
        ptr = image("pointers", k)
        spmat = image("spmat", k)
        entries = [(spmat[e // per_word] >> (e % per_word * entry_bits)) & ((1 << entry_bits) - 1) for e in range(ptr[-1])]
        pes.append({"codes": [e & ((1 << code_bits) - 1) for e in entries], "z": [e >> code_bits for e in entries], "ptr": ptr})
    return fixed, pes


def dense(layer):
    rows, cols, n = layer["rows"], layer["cols"], len(layer["pe"])
    matrix = [[0.0] * cols for _ in range(rows)]
    max_z = (1 << layer["index_bits"]) - 1
    for k, pe in enumerate(layer["pe"]):
        for j in range(cols):
            row = -1
            for e in range(pe["ptr"][j], pe["ptr"][j + 1]):
                row += pe["z"][e] + 1
                code = pe["codes"][e]
                if code == 0:
                    assert pe["z"][e] == max_z and e + 1 < pe["ptr"][j + 1], "non-canonical padding"
                else:
                    matrix[k + row * n][j] = layer["codebook"][code]
    return matrix


def main(out_dir):
    bundle = read_bundle(os.path.join(out_dir, "model.eie"))
    manifest = json.load(open(os.path.join(out_dir, "manifest.json")))
    assert manifest["format"] == "eie-images" and manifest["byte_order"] == "little-endian"
    assert manifest["pointer_bits"] == bundle["pointer_bits"]
    out = []
    for layer, lm in zip(bundle["layers"], manifest["layers"], strict=True):
        fixed, pes = read_images(out_dir, manifest, lm)
        assert fixed == layer["codebook_fixed"], layer["name"]
        assert pes == layer["pe"], layer["name"] + ": images differ from model.eie"
        f = layer["codebook_frac_bits"]
        assert all(q == int(abs(v) * 2 ** f + 0.5) * (1 if v >= 0 else -1) for v, q in zip(layer["codebook"], fixed))
        out.append({"name": layer["name"], "rows": layer["rows"], "cols": layer["cols"], "pes": len(pes),
                    "codebook": layer["codebook"], "dense": dense(layer), "pe": pes})
    json.dump({"layers": out}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
