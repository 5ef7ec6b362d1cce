#!/usr/bin/env python3
"""tests/report/check_png.py — is a PNG screenshot non-trivial? Decodes the
PNG with zlib (no imaging library needed) and checks its size, that it is
not one flat colour, and that enough of it differs from the most common
(background) colour.
  check_png.py FILE.png MIN_WIDTH MIN_HEIGHT
Prints the measured numbers; exit 0 when the checks pass, 1 otherwise."""
import struct
import sys
import zlib


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG: depth {depth} colour type {color} interlace {interlace}")
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def main():
    path, min_w, min_h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    w, h, bpp, rows = read_png(path)
    counts = {}
    for y in range(0, h, 2):
        row = rows[y]
        for x in range(0, w * bpp, bpp * 2):
            px = row[x:x + 3]
            counts[px] = counts.get(px, 0) + 1
    colours, total = counts, sum(counts.values())
    frac = 1 - max(counts.values()) / total  # share not in the most common (background) colour
    print(f"{path}: {w}x{h}, {len(colours)} colours sampled, {100 * frac:.1f}% non-background")
    ok = w >= min_w and h >= min_h and len(colours) >= 16 and frac >= 0.02
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
