"""ref_text — numpy references for tests/test_text.c: LM objective rows
(causal and prefix-LM windows, CodeGen2 span corruption with sentinels) and
a byte-level BPE (train + encode), written independently of the C code from
the definitions in include/graft/text.h.

Byte tokenizer layout: text ids 0..255, then <|endoftext|> 256, <sep> 257,
<eom> 258, <mask_1..8> 259..266."""
import numpy as np

from reflib import write_ref

EOS, SEP, EOM, MASK0 = 256, 257, 258, 259


def window_row(stream, o, T, p):
    ids = stream[o:o + T].copy()
    tgt = stream[o + 1:o + T + 1].copy()
    tgt[:max(p - 1, 0)] = -1
    return ids, tgt


def infill_row(src, spans, T):
    seq, at = [], 0
    for i, (s, n) in enumerate(spans):
        seq += list(src[at:s]) + [MASK0 + i]
        at = s + n
    seq += list(src[at:]) + [EOS, SEP]
    for i, (s, n) in enumerate(spans):
        seq += [MASK0 + i] + list(src[s:s + n]) + [EOM]
    ids = np.full(T, EOS, np.int64)
    tgt = np.full(T, -1, np.int64)
    m = min(len(seq), T)
    ids[:m] = seq[:m]
    m1 = min(len(seq) - 1, T)
    tgt[:m1] = seq[1:m1 + 1]
    return ids, tgt


def random_spans(rng, L, k):
    while True:
        cuts = np.sort(rng.choice(L + 1, 2 * k, replace=False))
        spans = [(int(cuts[2 * i]), int(cuts[2 * i + 1] - cuts[2 * i])) for i in range(k)]
        if all(n >= 1 for _, n in spans):
            return spans


def bpe_train(data, n_merges):
    ids, merges = list(data), []
    for r in range(n_merges):
        counts = {}
        for a, b in zip(ids, ids[1:]):
            if a != 10 and b != 10:
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts:
            break
        pair, c = max(counts.items(), key=lambda kv: (kv[1], -(kv[0][0] << 32 | kv[0][1])))
        if c < 2:
            break
        merges.append(pair)
        ids = apply_merge(ids, pair, 256 + r)
    return merges


def apply_merge(ids, pair, new):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def main():
    rng = np.random.default_rng(7)
    stream = rng.integers(0, 256, 300)
    T = 32
    offs = rng.integers(0, len(stream) - T - 1, 6)
    prefixes = np.array([0, 1, 2, 5, 17, 32])
    rows = [window_row(stream, int(o), T, int(p)) for o, p in zip(offs, prefixes)]
    write_ref("lm_window", {"stream": stream, "offsets": offs, "prefix": prefixes,
                            "ids": np.stack([r[0] for r in rows]), "targets": np.stack([r[1] for r in rows])})

    Ti, L, cases = 64, 40, []
    for k in (1, 2, 3, 8):
        src = rng.integers(0, 256, L if k < 8 else Ti + 1 - 3 * k - 2)  # k = 8 fills all Ti + 1 tokens
        spans = random_spans(rng, L, k)
        cases.append((src, spans))
    cases.append((rng.integers(0, 256, 10), [(0, 3), (5, 5)]))  # spans at both ends
    for i, (src, spans) in enumerate(cases):
        ids, tgt = infill_row(src, spans, Ti)
        write_ref("lm_infill_%d" % i, {"src": src, "starts": [s for s, _ in spans], "lens": [n for _, n in spans],
                                       "ids": ids, "targets": tgt})

    text = (b"the cat sat on the mat\nthe dog sat on the log\n" * 3 + b"that theme, then there\n"
            b"int main(void) { return 0; }\nint mask(int x) { return x & 0xff; }\n")
    merges = bpe_train(text, 40)
    probe = b"the hat sat\nreturn the theme;\n"
    enc = list(probe)
    for r, pair in enumerate(merges):
        enc = apply_merge(enc, pair, 256 + r)
    write_ref("bpe", {"text": np.frombuffer(text, np.uint8), "merges": np.array(merges),
                      "probe": np.frombuffer(probe, np.uint8), "encoded": np.array(enc)})


if __name__ == "__main__":
    main()
