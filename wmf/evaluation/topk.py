"""Batched exact top-k recommendation and item-to-item similarity.

Scores are dense matrix products per batch of users (BLAS through torch, so
memory is bounded by the batch, not by the number of users), seen items set to
-inf. On the CPU the product is taken one chunk of items at a time, small enough
to stay in L2 while a numba kernel masks its seen items and takes the maxima of
its 32-column blocks; those maxima give each row a lower bound of its k-th best
score, so only the few blocks reaching it are scanned into a k-sized heap (much
cheaper than `torch.topk` over 17.8k columns). On other devices (CUDA) it is
`torch.topk`.

Ties are broken deterministically, lower item index first, on every device:
`torch.topk` alone is not stable, and recommendations must be reproducible.
Slots beyond the number of candidate items hold item -1 and score -inf.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numba
import numpy as np
import torch
from tqdm import tqdm

Array = np.ndarray | torch.Tensor
_BLOCK = 32
_CHUNK_BYTES = 512 << 10  # one chunk's scores: half of a 1 MiB L2


@torch.no_grad()
def top_k(
    user_factors: Array,
    item_factors: Array,
    k: int,
    exclude: tuple[np.ndarray, np.ndarray] | None = None,
    users: np.ndarray | None = None,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = False,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Best `k` items of each user by dot product (items int32 [n, k], scores float32 [n, k]).

    `exclude` is a user-major CSR (indptr, indices) of items never to recommend
    (the seen items); `users` picks and orders the rows (default: all users);
    `candidates` (sorted item indices) are the only items ranked (business rules): the
    order among them is the unrestricted ranking's, ties included.
    On the CPU, one worker thread per torch thread scores and selects its own
    batches with single-threaded kernels, as implicit does: no barrier between
    the product and the selection.
    """
    if candidates is not None:
        candidates = np.asarray(candidates, dtype=np.int64)
        excluded = None if exclude is None else _restricted(exclude, candidates, item_factors.shape[0])
        items, scores = top_k(
            user_factors, item_factors[candidates], k, excluded, users, batch_size, device, progress
        )
        return np.where(items >= 0, candidates[np.maximum(items, 0)], -1).astype(np.int32), scores
    n_users = user_factors.shape[0]
    rows = np.arange(n_users) if users is None else np.asarray(users, dtype=np.int64)
    on_cpu = torch.device(device).type == "cpu"
    # A copy: torch's allocator aligns it, and BLAS took twice as long on the unaligned
    # buffer of a safetensors file.
    items_t = _as_float32(item_factors, device).clone()
    out_items = np.empty((len(rows), k), dtype=np.int32)
    out_scores = np.empty((len(rows), k), dtype=np.float32)
    if exclude is None:
        exclude = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32))
    seen_ptr, seen_idx = np.asarray(exclude[0], dtype=np.int64), np.asarray(exclude[1])
    buffers = threading.local()  # each CPU worker's score buffer, reused: a new one page-faults again

    def score_batch(start: int) -> None:
        with torch.no_grad():  # grad mode is per thread
            batch = rows[start : start + batch_size]
            queries = _as_float32(user_factors[_take(user_factors, batch, users is None)], device)
            stop = start + len(batch)
            if on_cpu:
                _score_select_cpu(
                    queries,
                    items_t,
                    batch,
                    (seen_ptr, seen_idx),
                    buffers,
                    out_items[start:stop],
                    out_scores[start:stop],
                )
                return
            scores = queries @ items_t.T
            if len(seen_ptr):
                _mask_seen(scores, _csr_rows(seen_ptr, seen_idx, batch, contiguous=users is None))
            items, values = _select_torch(scores, k)
            out_items[start:stop], out_scores[start:stop] = items.cpu().numpy(), values.cpu().numpy()

    starts = range(0, len(rows), batch_size)
    bar = partial(tqdm, total=len(starts), disable=not progress, desc="top-k", unit="batch")
    workers = torch.get_num_threads() if on_cpu else 1
    if workers == 1:
        for start in bar(starts):
            score_batch(start)
        return out_items, out_scores
    try:
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            for _ in bar(pool.map(score_batch, starts)):
                pass
    finally:
        torch.set_num_threads(workers)  # the workers' setting is process-wide in part
    return out_items, out_scores


@torch.no_grad()
def similar_items(
    item_factors: Array,
    k: int,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = False,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Most similar `k` items of every item by cosine, the item itself excluded; only
    `candidates` (sorted item indices) when given.

    Items with a zero vector have cosine 0 with everything (not NaN).
    """
    factors = _as_float32(item_factors, device)
    norms = factors.norm(dim=1, keepdim=True)
    unit = factors / torch.where(norms > 0, norms, torch.ones_like(norms))
    n = factors.shape[0]
    self_ptr = np.arange(n + 1, dtype=np.int64)
    self_idx = np.arange(n, dtype=np.int32)
    return top_k(
        unit,
        unit,
        k,
        exclude=(self_ptr, self_idx),
        batch_size=batch_size,
        device=device,
        progress=progress,
        candidates=candidates,
    )


def _restricted(
    exclude: tuple[np.ndarray, np.ndarray], candidates: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """The exclusion CSR over the candidates' positions, items outside them dropped."""
    position = np.full(n_items, -1, dtype=np.int32)
    position[candidates] = np.arange(len(candidates), dtype=np.int32)
    indptr, indices = np.asarray(exclude[0], dtype=np.int64), np.asarray(exclude[1])
    mapped = position[indices]
    kept = np.zeros(len(mapped) + 1, dtype=np.int64)
    np.cumsum(mapped >= 0, out=kept[1:])
    return kept[indptr], mapped[mapped >= 0]


def _as_float32(x: Array, device: str) -> torch.Tensor:
    return torch.as_tensor(x).to(device=device, dtype=torch.float32)


def _take(factors: Array, batch: np.ndarray, contiguous: bool) -> slice | np.ndarray | torch.Tensor:
    """Row selector for a batch: a slice (no copy) for consecutive users."""
    if contiguous:
        return slice(int(batch[0]), int(batch[-1]) + 1)
    return torch.as_tensor(batch) if isinstance(factors, torch.Tensor) else batch


def _csr_rows(
    indptr: np.ndarray, indices: np.ndarray, batch: np.ndarray, contiguous: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The batch's rows of the exclusion CSR (indptr int64), re-based to start at 0."""
    if contiguous:
        lo, hi = int(batch[0]), int(batch[-1]) + 1
        return indptr[lo : hi + 1] - indptr[lo], indices[indptr[lo] : indptr[hi]]
    starts = indptr[batch]
    lengths = indptr[batch + 1] - starts
    ptr = np.zeros(len(batch) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ptr[1:])
    positions = np.repeat(starts - ptr[:-1], lengths) + np.arange(ptr[-1])
    return ptr, indices[positions]


def _mask_seen(scores: torch.Tensor, seen: tuple[np.ndarray, np.ndarray]) -> None:
    """Write -inf at the batch's CSR positions in one scatter."""
    n_rows, n_items = scores.shape
    ptr, idx = seen
    flat_rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(ptr))
    flat = torch.as_tensor(flat_rows * n_items + idx.astype(np.int64), device=scores.device)
    scores.view(-1)[flat] = -torch.inf


def _select_torch(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Device-agnostic selection (seen items already -inf): topk, then exact tie order.

    topk of k+1 reveals a tie across the k-th place; only such rows pay a full stable sort.
    """
    n_items = scores.shape[1]
    kk = min(k + 1, n_items)
    values, items = scores.topk(kk, dim=1)
    items, order = items.sort(dim=1)
    values, order = values.gather(1, order).sort(dim=1, descending=True, stable=True)
    items = items.gather(1, order)
    if kk > k:
        tied = ((values[:, k - 1] == values[:, k]) & (values[:, k - 1] > -torch.inf)).nonzero().flatten()
        if len(tied):
            full_values, full_items = scores[tied].sort(dim=1, descending=True, stable=True)
            values[tied], items[tied] = full_values[:, :kk], full_items[:, :kk]
    values, items = values[:, :k], items[:, :k].to(torch.int32)
    items[values == -torch.inf] = -1
    pad = k - values.shape[1]
    if pad > 0:
        values = torch.nn.functional.pad(values, (0, pad), value=-torch.inf)
        items = torch.nn.functional.pad(items, (0, pad), value=-1)
    return items, values


def _score_select_cpu(
    queries: torch.Tensor,
    items: torch.Tensor,
    rows: np.ndarray,
    seen: tuple[np.ndarray, np.ndarray],
    buffers: threading.local,
    out_items: np.ndarray,
    out_values: np.ndarray,
) -> None:
    """Score a batch chunk by chunk of items, each chunk's product small enough to stay in
    L2 while its seen items are masked and its block maxima taken (measured: a whole
    256 x 17,770 block written to memory and read back cost 2-4x as much on a busy
    machine); the scores stay in one reused buffer for the selection."""
    n_rows, n_items = queries.shape[0], items.shape[0]
    width = max(_BLOCK, _CHUNK_BYTES // (4 * n_rows) // _BLOCK * _BLOCK)
    n_chunks = -(-n_items // width)
    if getattr(buffers, "scores", None) is None or buffers.scores.numel() < n_rows * n_chunks * width:
        buffers.scores = torch.empty(n_rows * n_chunks * width)
    flat = buffers.scores
    maxima = np.empty((n_rows, -(-n_items // _BLOCK)), dtype=np.float32)
    bucket_ptr, seen_rows, seen_cols = _seen_by_chunk(rows, seen[0], seen[1], width, n_chunks)
    for c in range(n_chunks):
        lo, hi = c * width, min(n_items, (c + 1) * width)
        base = c * n_rows * width
        chunk = torch.mm(
            queries, items[lo:hi].T, out=flat[base : base + n_rows * (hi - lo)].view(n_rows, hi - lo)
        )
        in_chunk = slice(bucket_ptr[c], bucket_ptr[c + 1])
        _mask_and_maxima(chunk.numpy(), lo, seen_rows[in_chunk], seen_cols[in_chunk], maxima)
    _select_blocks(flat.numpy(), width, n_items, maxima, out_items, out_values)


@numba.njit(nogil=True, cache=True)
def _seen_by_chunk(rows, seen_ptr, seen_idx, width, n_chunks):  # pragma: no cover - numba
    """The batch's seen (row, column) pairs grouped by column chunk (one counting sort),
    so that each chunk masks only its own."""
    bucket_ptr = np.zeros(n_chunks + 1, np.int64)
    if seen_ptr.shape[0] == 0:
        return bucket_ptr, np.zeros(0, np.int64), np.zeros(0, np.int64)
    for u in rows:
        for p in range(seen_ptr[u], seen_ptr[u + 1]):
            bucket_ptr[seen_idx[p] // width + 1] += 1
    bucket_ptr = np.cumsum(bucket_ptr)
    fill = bucket_ptr[:-1].copy()
    out_rows = np.empty(bucket_ptr[-1], np.int64)
    out_cols = np.empty(bucket_ptr[-1], np.int64)
    for r in range(rows.shape[0]):
        u = rows[r]
        for p in range(seen_ptr[u], seen_ptr[u + 1]):
            c = seen_idx[p] // width
            out_rows[fill[c]] = r
            out_cols[fill[c]] = seen_idx[p]
            fill[c] += 1
    return bucket_ptr, out_rows, out_cols


@numba.njit(nogil=True, cache=True)
def _mask_and_maxima(chunk, lo, seen_rows, seen_cols, maxima):  # pragma: no cover - numba
    """Set the chunk's seen items (columns lo..) to -inf, then write its _BLOCK-column maxima."""
    n_rows, width = chunk.shape
    for p in range(seen_rows.shape[0]):
        chunk[seen_rows[p], seen_cols[p] - lo] = -np.inf
    for r in range(n_rows):
        row = chunk[r]
        for b0 in range(0, width, _BLOCK):
            m = -np.inf
            for j in range(b0, min(b0 + _BLOCK, width)):
                if row[j] > m:
                    m = row[j]
            maxima[r, (lo + b0) // _BLOCK] = m


@numba.njit(nogil=True, cache=True)
def _select_blocks(flat, width, n_items, maxima, out_items, out_values):  # pragma: no cover - numba
    """Per row: a min-heap of the best k (worst at the root) over the few items that can qualify.

    The k-th largest block maximum is a lower bound of the row's k-th largest score, so
    only blocks reaching it are scanned: ~k/n of the row, and hardly any heap updates
    beyond the first k. Items are visited in ascending order, so an equal score never
    displaces an item already kept: ties go to the lower index without extra comparisons.
    `flat` holds the chunks one after another, each row-major over the batch's rows.
    """
    n_rows, n_blocks = maxima.shape
    k = out_items.shape[1]
    for r in range(n_rows):
        block_max = maxima[r]
        threshold = -np.inf
        if n_blocks > k:
            threshold = np.partition(block_max.copy(), n_blocks - k)[n_blocks - k]
        heap_v = out_values[r]
        heap_i = out_items[r]
        size = 0
        for b in range(n_blocks):
            if block_max[b] < threshold or block_max[b] == -np.inf:
                continue
            j0 = b * _BLOCK
            c = j0 // width
            lo = c * width
            offset = c * n_rows * width + r * (min(n_items, lo + width) - lo) - lo
            for j in range(j0, min(j0 + _BLOCK, n_items)):
                x = flat[offset + j]
                if x < threshold or x == -np.inf:
                    continue
                if size < k:
                    _sift_up(heap_v, heap_i, size, x, j)
                    size += 1
                elif x > heap_v[0]:
                    _sift_down(heap_v, heap_i, size, x, j)
        # Heap sort: pop the worst to the back, leaving the row best-first.
        for end in range(size - 1, 0, -1):
            v, i = heap_v[end], heap_i[end]
            heap_v[end] = heap_v[0]
            heap_i[end] = heap_i[0]
            _sift_down(heap_v, heap_i, end, v, i)
        for p in range(size, k):
            heap_v[p] = -np.inf
            heap_i[p] = -1


@numba.njit(inline="always", cache=True)
def _worse(v_a, i_a, v_b, i_b):  # pragma: no cover - numba
    """Whether entry a ranks below entry b (lower score, or equal score and higher index)."""
    return v_a < v_b or (v_a == v_b and i_a > i_b)


@numba.njit(inline="always", cache=True)
def _sift_up(heap_v, heap_i, size, v, i):  # pragma: no cover - numba
    """Append (v, i) to the heap of `size` entries and restore the heap."""
    pos = size
    while pos > 0:
        parent = (pos - 1) // 2
        if _worse(heap_v[parent], heap_i[parent], v, i):
            break
        heap_v[pos] = heap_v[parent]
        heap_i[pos] = heap_i[parent]
        pos = parent
    heap_v[pos] = v
    heap_i[pos] = i


@numba.njit(inline="always", cache=True)
def _sift_down(heap_v, heap_i, size, v, i):  # pragma: no cover - numba
    """Place (v, i) at the root of the heap of `size` entries and restore the heap."""
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and _worse(heap_v[child + 1], heap_i[child + 1], heap_v[child], heap_i[child]):
            child += 1
        if _worse(heap_v[child], heap_i[child], v, i):
            heap_v[pos] = heap_v[child]
            heap_i[pos] = heap_i[child]
            pos = child
        else:
            break
    heap_v[pos] = v
    heap_i[pos] = i
