"""A NumPy model of kernels/sampling.cu's sampler integers for tests/test_sampler_model.py: the fixed-point masses,
the comp-key order, the value bins, and two ways of choosing the token from them:
- `direct`: the rule itself (sort every kept element by comp, cumulative sums, top-k -> top-p -> draw);
- `bracketed`: sample_draw_v2's finishing block (finish_v2): bin histogram only, each step's bin bracketed from the
  previous step's [zlo, zhi], the bracketed bin ranges merged into <= 3 regions, only their elements gathered and
  ranked within their region; None where the kernel takes the exact fallback (a region too large, a step with no
  element).
sample_draw_v3 chooses the same way and differs only in how the regions' elements are found: `block_layout` models
its per-block counting sort (skey, bend) and `gather_slices` its reads of one bin range; `bracketed(..., v3=True)`
gathers through them.
float32 throughout where the kernel computes in float (m - l, the bin scale, exp), so bins behave as on the device;
np.exp may differ from CUDA's expf in the last bit, which changes masses but not the equality of the two paths."""
import numpy as np

NB, DMAX = 2048, np.float32(24.0)
REGION_CAP, LIST_CAP = 512, 1024  # S2_REGION_CAP, S2_LIST_CAP
CHUNK = 1024  # S2_CHUNK: logits per block


def prepared(s):
    """(m, scale, bins int64 [V], masses uint64 [V], comp uint64 [V]) of processed logits s float32 [V] (finite max)."""
    s = np.asarray(s, np.float32)
    m = s.max()
    fin = s[np.isfinite(s)]
    dr = min(np.float32(m - fin.min()), DMAX)
    scale = np.float32(NB - 1) / np.float32(dr) if dr > 0 else np.float32(0)
    with np.errstate(invalid="ignore", over="ignore"):
        x = (np.float32(m) - s) * scale
        x = np.where(np.isnan(x), np.float32(NB), x)
        bins = np.where(x < np.float32(NB - 1), np.floor(np.minimum(x, NB)), NB - 1).astype(np.int64)
    w = np.rint(np.exp((s - m).astype(np.float32)).astype(np.float32) * np.float32(2.0 ** 31)).astype(np.uint64)
    return m, scale, bins, w, comp_keys(s)


def comp_keys(s):
    """comp_key(s[i], i) uint64 [V] of float32 s [V]."""
    u = np.asarray(s, np.float32).view(np.uint32).astype(np.uint64)
    orderable = np.where(u & 0x80000000, ~u & 0xFFFFFFFF, u | 0x80000000)
    return (orderable << np.uint64(32)) | (np.uint64(0xFFFFFFFF) - np.arange(u.size, dtype=np.uint64))


def key_logit(keys):
    """float32 logits of comp keys uint64 [n] (sampling_v3.cuh key_logit: orderable() inverted)."""
    o = (np.asarray(keys, np.uint64) >> np.uint64(32)).astype(np.uint32)
    u = np.where(o & np.uint32(0x80000000), o & np.uint32(0x7FFFFFFF), ~o).astype(np.uint32)
    return u.view(np.float32)


def topp_target(top_p, z):
    tp = int(np.ceil(float(np.float32(top_p)) * float(z)))
    return max(tp, 1) - 1


def draw_target(u24, z):
    return (u24 * z) >> 24


def _first_over(cum, target):
    """Index of the first inclusive cumulative weight > target."""
    return int(np.searchsorted(cum, np.uint64(target), side="right"))


def direct(s, top_k, top_p, u24):
    _, _, _, w, comp = prepared(s)
    order = np.argsort(comp)[::-1]
    cum = np.cumsum(w[order])  # uint64: V * 2^31 < 2^63, exact
    z, n = int(cum[-1]), len(order)
    if 1 < top_k < s.size:
        n = top_k
        z = int(cum[n - 1])
    if top_p < 1.0:
        n = _first_over(cum[:n], topp_target(top_p, z)) + 1
        z = int(cum[n - 1])
    return int(order[_first_over(cum[:n], draw_target(u24, z))])


def locate(pre, own, tg):
    """The bin whose [pre, pre + own) holds tg, or -1."""
    b = int(np.searchsorted(pre + own, np.uint64(tg), side="right"))
    return b if b < NB and int(pre[b]) <= tg < int(pre[b] + own[b]) else -1


def block_layout(bins, comp, rng=None):
    """v3's per-block counting sort: (skey uint64 [G * CHUNK], bend int64 [G, NB]); block g's in-range keys in
    bin order (slot order within a bin arbitrary: shuffled when rng is given, as the atomics leave it), bend[g, b] =
    its elements in bins <= b. Slots past V stay 0 (never read)."""
    G = -(-bins.size // CHUNK)
    skey = np.zeros(G * CHUNK, np.uint64)
    bend = np.zeros((G, NB), np.int64)
    for g in range(G):
        b, c = bins[g * CHUNK:(g + 1) * CHUNK], comp[g * CHUNK:(g + 1) * CHUNK]
        perm = rng.permutation(b.size) if rng is not None else np.arange(b.size)
        order = perm[np.argsort(b[perm], kind="stable")]
        skey[g * CHUNK:g * CHUNK + b.size] = c[order]
        bend[g] = np.cumsum(np.bincount(b, minlength=NB))
    return skey, bend


def gather_slices(skey, bend, lo, hi):
    """The keys in bins lo..hi, block by block, as gather_slices in sampling_v3.cuh reads them."""
    out = []
    for g in range(bend.shape[0]):
        beg = int(bend[g, lo - 1]) if lo > 0 else 0
        out.append(skey[g * CHUNK + beg:g * CHUNK + int(bend[g, hi])])
    return np.concatenate(out)


def bracketed(s, top_k, top_p, u24, stats=None, v3=False):
    """stats: a dict that receives the region sizes. v3: gather each region through block_layout / gather_slices
    (keys only: the index and the mass come from the key, as in the kernel)."""
    _, _, bins, w, comp = prepared(s)
    c = np.bincount(bins, minlength=NB).astype(np.uint64)
    wb = np.zeros(NB, np.uint64)
    np.add.at(wb, bins, w)
    cx = np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.uint64)
    mx = np.concatenate([[0], np.cumsum(wb)[:-1]]).astype(np.uint64)
    ztot = int(sum(wb))
    topk, topp = 1 < top_k < s.size, top_p < 1.0
    zlo = zhi = ztot
    ranges = []
    if topk:
        b = locate(cx, c, top_k - 1)
        if b < 0:
            return None
        kexact = int(wb[b]) == 0  # a bin without mass: the kept mass is exact, top-k needs no element
        if not kexact:
            ranges.append((b, b))
        zlo, zhi = int(mx[b]), int(mx[b] + wb[b])
        zk = zlo
    if topp:
        tlo, thi = topp_target(top_p, zlo), topp_target(top_p, zhi)
        blo, bhi = locate(mx, wb, tlo), locate(mx, wb, thi)
        if min(blo, bhi) < 0:
            return None
        ranges.append((blo, bhi))
        zlo, zhi = tlo + 1, int(mx[bhi] + wb[bhi])
    blo, bhi = locate(mx, wb, draw_target(u24, zlo)), locate(mx, wb, draw_target(u24, zhi))
    if min(blo, bhi) < 0:
        return None
    ranges.append((blo, bhi))
    regions = []
    for lo, hi in sorted(ranges):
        if regions and lo <= regions[-1][1]:
            regions[-1][1] = max(regions[-1][1], hi)
        else:
            regions.append([lo, hi])
    sizes = [int(cx[hi] + c[hi] - cx[lo]) for lo, hi in regions]
    if stats is not None:
        stats["sizes"] = sizes
    if sum(sizes) > LIST_CAP or max(sizes) > REGION_CAP:
        return None
    gathered = []  # (comp, mass, global count before, global mass before)
    layout = block_layout(bins, comp, np.random.default_rng(u24)) if v3 else None
    for lo, hi in regions:
        if v3:
            keys = np.sort(gather_slices(*layout, lo, hi))[::-1]
            idx = (np.uint64(0xFFFFFFFF) - (keys & np.uint64(0xFFFFFFFF))).astype(np.int64)
            assert np.array_equal(comp[idx], keys)  # the key alone gives the id (and the logit)
        else:
            idx = np.flatnonzero((bins >= lo) & (bins <= hi))
            idx = idx[np.argsort(comp[idx])[::-1]]
        nb, mb = int(cx[lo]), int(mx[lo])
        for i in idx:
            gathered.append((int(comp[i]), int(w[i]), nb, mb))
            nb, mb = nb + 1, mb + int(w[i])
    z = ztot
    if topk and kexact:
        z = zk
    elif topk:
        hit = [mb + wt for cc, wt, nb, mb in gathered if nb == top_k - 1]
        if len(hit) != 1:
            return None
        z = hit[0]
    if topp:
        tg = topp_target(top_p, z)
        hit = [mb + wt for cc, wt, nb, mb in gathered if mb <= tg < mb + wt]
        if len(hit) != 1:
            return None
        z = hit[0]
    tg = draw_target(u24, z)
    hit = [cc for cc, wt, nb, mb in gathered if mb <= tg < mb + wt]
    if len(hit) != 1:
        return None
    return 0xFFFFFFFF - (hit[0] & 0xFFFFFFFF)
