"""Out-of-core features (``data.storage: disk``): a table streamed in chunks into on-disk shards, read lazily.

Pass 1 reads the table chunk by chunk. Each distinct cell of a modality gets a slot; image and audio cells are
decoded once (by worker processes) and their values appended to a shard in compact form (uint8 pixels, int16
samples); other kinds (tables, text, vectors) are decoded per chunk and fed to their streaming fit. Pass 2
(only when fitting) streams the table again and appends the encoded values of those kinds, and the image
statistics are fitted from the shards. Nothing holds a split in memory: per row only its slots, mask bits,
target and row id are kept. ``DiskFeatures[index]`` gathers a batch from the shards and encodes it, in the
DataLoader's worker processes. Skip reports, missing-modality masks and de-duplicated modalities work as in
memory (``featurize``), and the decoded shards of file kinds are cached by content like the feature cache.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from ..errors import DataError
from ..kinds import Preprocessor
from .cache import FeatureCache
from .dataset import SkipReport, _dedupe
from .decode import Decoder, release_memory
from .disk_features import Column, DiskFeatures, ShardStore
from .readers import iter_table
from .shard_cache import cache_writer_folder, fit_from_shard, load_cached, save_cached, shard_keys
from .shards import ShardArray, ShardWriter
from .target import TargetEncoder


def split_val(positions: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Whether each row (by its position in the table) is a validation row: a seeded hash, so chunking does not matter."""
    with np.errstate(over="ignore"):
        x = np.asarray(positions, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53) < fraction


class _Slots:
    """Distinct cells of one modality in order of first appearance (unhashable cells, arrays, each their own),
    whether each decoded to a value, and the decode / encode errors of each."""

    def __init__(self) -> None:
        self.index: dict = {}
        self.count = 0
        self.present: list[bool] = []
        self.errors: dict[int, DataError] = {}
        self.encode_errors: dict[int, DataError] = {}
        #: per slot, the cells its encoding filled in or mapped (``Preprocessor.imputed``), where any
        self.imputed: dict[int, dict[str, int]] = {}

    def assign(self, cells: list[tuple]) -> tuple[np.ndarray, list[int]]:
        slots, new = np.empty(len(cells), dtype=np.int64), []
        for i, cell in enumerate(cells):
            try:
                slot = self.index.setdefault(cell, self.count)
            except TypeError:
                slot = self.count
            if slot == self.count:
                new.append(i)
                self.count += 1
            slots[i] = slot
        return slots, new


def featurize_disk(
    source: Any,
    preprocessors: dict[str, Preprocessor],
    target_encoder: Optional[TargetEncoder],
    target: Optional[str],
    *,
    fit: bool = False,
    val_fraction: float = 0.0,
    seed: int = 0,
    on_error: str = "raise",
    cache: Optional[FeatureCache] = None,
    workers: int = 0,
    chunk_size: int = 10000,
    na_values: Optional[list[str]] = None,
) -> tuple[DiskFeatures, Optional[DiskFeatures]]:
    """Stream ``source`` into shards; with ``fit`` fit the preprocessors (and target) on the non-validation rows.

    Returns the features of the rows not held out and, when ``val_fraction`` > 0, of the held-out rows
    (chosen per row by a seeded hash, about ``val_fraction`` of them).
    """
    names = list(preprocessors)
    lazy = [n for n, p in preprocessors.items() if p.stored() is not None]
    cheap = [n for n in names if n not in lazy]
    labelled = target is not None and target_encoder is not None
    store = ShardStore(cache.folder.parent / "shards" if cache is not None else None)
    slots = {n: _Slots() for n in names}
    cached, writers = {}, {}
    keys = shard_keys(source, preprocessors, lazy, chunk_size, na_values) if cache is not None else {}
    for n in lazy:
        hit = load_cached(cache, keys[n]) if n in keys else None
        if hit is not None:
            cached[n], slots[n].present, slots[n].errors = hit
        else:
            folder = cache_writer_folder(cache, keys[n]) if n in keys else store.folder
            writers[n] = ShardWriter(folder / f"{n}.bin", *preprocessors[n].stored())
    encoded = _Encoded(preprocessors, cheap, store)
    if fit:
        for n in names:
            preprocessors[n].fit_start()
        if labelled:
            target_encoder.fit_start()
    row_slots: dict[str, list[np.ndarray]] = {n: [] for n in names}
    row_ids, is_val, labels_all, row_err = [], [], [], {}
    table, position = None, 0
    with Decoder(preprocessors, None, workers) as decoder:
        for chunk in iter_table(source, chunk_size, na_values):
            frame, table, decoder.base_dir = chunk.frame, chunk.name, chunk.base_dir
            n = len(frame)
            val = split_val(np.arange(position, position + n), val_fraction, seed) if val_fraction > 0 else np.zeros(n, bool)
            decoded: dict[str, dict[int, Any]] = {}
            queued: list = []
            for name in names:
                pre = preprocessors[name]
                _check_columns(pre, frame, table)
                cells = list(zip(*(frame[c].tolist() for c in pre.config.columns))) if n else []
                s, new = slots[name].assign(cells)
                row_slots[name].append(s)
                if name in cached:
                    continue
                if name in writers:  # decoded straight into the shard (by the workers, when there are any)
                    queued.append((name, slots[name].count - len(new), decoder.to_shard(name, [cells[i] for i in new], writers[name])))
                else:
                    decoded[name] = _decode_chunk(decoder, name, cells, s, new, slots[name])
            for name, first, results in queued:  # every file kind's jobs were queued before the first result is read
                for start, present, errs in results:
                    slots[name].errors.update({first + start + k: e for k, e in errs.items()})
                    slots[name].present.extend(present)
            if labelled and target not in frame.columns:
                raise DataError(f"the target column {target!r} is not in the table", table=table)
            labels = frame[target].tolist() if labelled else [None] * n
            rows = list(frame.index)
            chunk_err = _row_errors(preprocessors, slots, {k: v[-1] for k, v in row_slots.items()}, rows, labels,
                                    target, target_encoder if labelled else None, table, position)
            row_err.update(chunk_err)
            if fit:
                ok = [i for i in range(n) if not val[i] and position + i not in chunk_err]
                for name in cheap:
                    s = row_slots[name][-1]
                    preprocessors[name].fit_update([v for v in (decoded[name][int(s[i])] for i in ok) if v is not None])
                if labelled:
                    target_encoder.fit_update([labels[i] for i in ok])
            else:
                encoded.write(decoded, {k: v[-1] for k, v in row_slots.items()}, slots)
            row_ids += rows
            is_val.append(val)
            labels_all += labels
            position += n
    for name, writer in writers.items():
        cached[name] = writer.close()
        if name in keys:
            cached[name] = save_cached(cache, keys[name], cached[name], slots[name].present, slots[name].errors)
    slot_of = {n: np.concatenate(row_slots[n]) if row_slots[n] else np.zeros(0, np.int64) for n in names}
    val_rows = np.concatenate(is_val) if is_val else np.zeros(0, bool)
    if fit:
        for name in cheap:
            preprocessors[name].fit_finish()
        if labelled:
            target_encoder.fit_finish()
        ok = np.ones(position, bool)
        ok[val_rows] = False
        ok[list(row_err)] = False
        for name in lazy:
            fit_from_shard(preprocessors[name], cached[name], slot_of[name][ok], np.asarray(slots[name].present, bool))
        if cheap:  # pass 2: encode the cheap kinds with their fitted state
            position = 0
            for chunk in iter_table(source, chunk_size, na_values):
                n = len(chunk.frame)
                decoded, chunk_slots = {}, {}
                for name in cheap:
                    pre = preprocessors[name]
                    cells = list(zip(*(chunk.frame[c].tolist() for c in pre.config.columns))) if n else []
                    chunk_slots[name] = slot_of[name][position:position + n]
                    decoded[name] = _decode_pending(pre, cells, chunk_slots[name], encoded.written(name), chunk.base_dir)
                encoded.write(decoded, chunk_slots, slots)
                position += n
    arrays = {**encoded.close(), **{n: cached[n] for n in lazy}}
    release_memory()
    errors = _final_errors(row_err, names, slots, slot_of, row_ids, table)
    targets = _encode_targets(labels_all, target_encoder, target, row_ids, table, errors) if labelled else None
    if errors and on_error == "raise":
        first = errors[min(errors)]
        hint = " (set data.on_error: skip to drop bad rows and report them)"
        raise DataError(first.reason + hint, row=first.row, column=first.column, table=first.table, file=first.file)
    wanted = [~val_rows] + ([val_rows] if val_fraction > 0 else [])
    out = [_features(w, errors, names, preprocessors, slots, slot_of, arrays, lazy, targets, target_encoder, row_ids, table, store) for w in wanted]
    return out[0], (out[1] if len(out) > 1 else None)


def _features(wanted, errors, names, preprocessors, slots, slot_of, arrays, lazy, targets, target_encoder, row_ids, table, store) -> DiskFeatures:
    bad = np.zeros(len(wanted), bool)
    bad[list(errors)] = True
    keep = np.flatnonzero(wanted & ~bad)
    cols, masks, missing = {}, {}, {}
    for name in names:
        present_slot = np.asarray(slots[name].present, dtype=bool)
        s = slot_of[name][keep]
        present = present_slot[s] if len(s) else np.zeros(0, bool)
        s = np.where(present, s, -1)
        cols[name] = Column(arrays[name], s, preprocessors[name], name in lazy, _dedupe(preprocessors[name], len(np.unique(s[present])), len(keep)))
        masks[name] = torch.from_numpy(present)
        missing[name] = int((~present).sum())
    imputed = {}
    for name in names:  # summed over the used rows, as featurize counts them
        total: dict[str, int] = {}
        for slot in (slot_of[name][keep] if slots[name].imputed else ()):
            for what, count in slots[name].imputed.get(int(slot), {}).items():
                total[what] = total.get(what, 0) + count
        if total:
            imputed[name] = {k: v for k, v in total.items() if v}
    report = SkipReport(table, int(wanted.sum()), len(keep), [errors[i] for i in sorted(errors) if wanted[i]], missing, imputed)
    tgt = None
    if targets is not None:
        tgt = torch.from_numpy(targets[keep]).to(torch.long if target_encoder.task == "classification" else torch.float32)
    return DiskFeatures(cols, masks, tgt, [row_ids[i] for i in keep], report, store)


def _check_columns(pre: Preprocessor, frame, table: Optional[str]) -> None:
    missing_cols = [c for c in pre.config.columns if c not in frame.columns]
    if missing_cols:
        raise DataError(f"modality {pre.config.name!r} needs columns {missing_cols}, which the table lacks (it has {list(frame.columns)[:20]})", table=table)


def _decode_chunk(decoder: Decoder, name: str, cells: list[tuple], s: np.ndarray, new: list[int], slot: _Slots) -> dict[int, Any]:
    """Decode each distinct cell of a chunk of a cheap kind: {slot: value}; new slots get their presence and errors."""
    first: dict[int, int] = {}
    for i, j in enumerate(s.tolist()):
        first.setdefault(j, i)
    values, errs = decoder.decode(name, [cells[i] for i in first.values()])
    order = list(first)
    out = dict(zip(order, values))
    for k, e in errs.items():
        slot.errors[order[k]] = e
    slot.present.extend(out[int(s[i])] is not None for i in new)
    return out


def _decode_pending(pre: Preprocessor, cells: list[tuple], s: np.ndarray, written: int, base_dir) -> dict[int, Any]:
    """Decode the cells whose slots are not yet encoded (slots first appear in increasing order)."""
    out: dict[int, Any] = {}
    for i, j in enumerate(s.tolist()):
        if j >= written and j not in out:
            try:
                out[j] = pre.decode(cells[i], base_dir)
            except DataError:
                out[j] = None
    return out


class _Encoded:
    """Shards of encoded values of the cheap kinds, appended slot by slot in order."""

    def __init__(self, preprocessors: dict[str, Preprocessor], names: list[str], store: ShardStore) -> None:
        self.pres = preprocessors
        self.writers: dict[str, Optional[ShardWriter]] = {n: None for n in names}
        self.store = store
        self.counts = {n: 0 for n in names}

    def written(self, name: str) -> int:
        return self.counts[name]

    def write(self, decoded: dict[str, dict[int, Any]], chunk_slots: dict[str, np.ndarray], slots: dict[str, _Slots]) -> None:
        for name in self.writers:
            pre, values = self.pres[name], decoded[name]
            rows = []
            for j in sorted(k for k in values if k >= self.counts[name]):
                value, out = values[j], pre.empty()
                if value is not None and j not in slots[name].errors:
                    try:
                        out = pre.encode(value)
                    except DataError as err:
                        slots[name].encode_errors[j] = err
                    counts = pre.imputed([value])
                    if any(counts.values()):
                        slots[name].imputed[j] = counts
                rows.append(out)
            if rows:
                arr = np.stack(rows)
                if self.writers[name] is None:
                    self.writers[name] = ShardWriter(self.store.folder / f"{name}.bin", arr.shape[1:], arr.dtype)
                self.writers[name].append(arr)
                self.counts[name] += len(rows)

    def close(self) -> dict[str, ShardArray]:
        out = {}
        for name, w in self.writers.items():
            if w is None:
                empty = self.pres[name].empty()
                w = ShardWriter(self.store.folder / f"{name}.bin", empty.shape, empty.dtype)
            out[name] = w.close()
        return out


def _row_errors(preprocessors, slots, chunk_slots, rows, labels, target, target_encoder, table, position) -> dict[int, DataError]:
    """Decode errors (in modality order), then target errors, then rows with no modality, like ``featurize``."""
    errors: dict[int, DataError] = {}
    names = list(preprocessors)
    for name in names:
        slot, cols = slots[name], ", ".join(preprocessors[name].config.columns)
        for i, j in enumerate(chunk_slots[name].tolist()):
            if j in slot.errors and position + i not in errors:
                errors[position + i] = slot.errors[j].located(row=rows[i], column=cols, table=table)
    if target_encoder is not None:
        for i, value in enumerate(labels):
            try:
                target_encoder.check(value)
            except DataError as err:
                errors.setdefault(position + i, err.located(row=rows[i], column=target, table=table))
    for i in range(len(rows)):
        if position + i not in errors and not any(slots[n].present[int(chunk_slots[n][i])] for n in names):
            errors[position + i] = DataError("no modality is present in this row", row=rows[i], table=table)
    return errors


def _final_errors(row_err, names, slots, slot_of, row_ids, table) -> dict[int, DataError]:
    """Row errors plus the encode errors of the cheap kinds' slots (rows in table order)."""
    errors = dict(row_err)
    for name in names:
        bad = slots[name].encode_errors
        if not bad:
            continue
        for i in np.flatnonzero(np.isin(slot_of[name], list(bad))):
            if int(i) not in errors:
                errors[int(i)] = bad[int(slot_of[name][i])].located(row=row_ids[i], table=table)
    return dict(sorted(errors.items()))


def _encode_targets(labels, target_encoder, target, row_ids, table, errors) -> np.ndarray:
    targets = np.zeros(len(labels), dtype=np.float32)
    for i, value in enumerate(labels):
        if i in errors:
            continue
        try:
            targets[i] = target_encoder.encode(value)
        except DataError as err:
            errors[i] = err.located(row=row_ids[i], column=target, table=table)
    return targets
