"""Read the tensors of a ``torch.save`` file that holds other pickled objects too, without
running anything from it.

PyTorch Lightning's checkpoints (BIDL's ST-YOLO trains with Lightning) pickle more than
tensors: the hyper-parameters as omegaconf configs, callback and loop states, the learning
rate scheduler (in older torch with a bound method inside). ``torch.load(weights_only=True)``
refuses such a file, and ``weights_only=False`` would let the file call any function it
names. ``load_without_code`` reads it with its own unpickler instead:

- the only names the file may resolve are a fixed allowlist: torch's tensor rebuild
  functions (replaced by this module's own, which only view bytes as a tensor), the storage
  types, ``OrderedDict``, ``dict``, ``set``, ``frozenset``, ``torch.Size`` and torch's dtypes;
- every other name (``omegaconf.dictconfig.DictConfig``, ``builtins.exec``, ``os.system``,
  anything) resolves to a fresh ``Inert`` class made here: calling it, or building or
  filling it from the file, only records the arguments. No function, constructor or
  ``__setstate__`` of the named module runs, and the module is not even imported;
- storages are read from the zip archive's byte records, never from a pickled object.

Pickle runs code only through the callables it obtains from ``find_class`` (GLOBAL,
STACK_GLOBAL, INST, OBJ and the copyreg extension codes all go through it) and the
methods of the objects those build; both are limited to the above, so the file can at
worst make ``Inert`` objects or fail to load.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch

#: storage class names torch.save writes (``torch.FloatStorage``, ...) and their dtypes
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}


class Inert:
    """Stands for an object the file names but this reader does not build: it keeps what
    the file hands it and does nothing else."""

    global_name = ""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs, self.state = args, kwargs, None
        self.items: dict = {}
        self.list_items: list = []

    def __setstate__(self, state) -> None:  # BUILD
        self.state = state

    def __setitem__(self, key, value) -> None:  # SETITEM(S)
        self.items[key] = value

    def append(self, value) -> None:  # APPEND
        self.list_items.append(value)

    def extend(self, values) -> None:  # APPENDS
        self.list_items.extend(values)

    def __repr__(self) -> str:
        return f"<{self.global_name}, not built>"


class _Storage:
    """A storage type named by the file (``torch.FloatStorage``): only its dtype is kept."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    """``torch._utils._rebuild_tensor(_v2)``: a view of the storage's bytes; requires_grad,
    backward hooks and metadata are dropped (weights only)."""
    if not isinstance(storage, torch.Tensor):
        raise pickle.UnpicklingError(f"a tensor without a storage ({type(storage).__name__})")
    return torch.as_strided(storage, tuple(size), tuple(stride), int(storage_offset))


def _rebuild_parameter(data, *_ignored):
    """``torch._utils._rebuild_parameter(_with_state)``: the tensor itself."""
    return data


def _rebuild_from_type(func, _type, args, _state):
    """``torch._tensor._rebuild_from_type_v2``: ``func`` is one of the allowlisted names
    (or an ``Inert``), so calling it is safe; the subclass and its state are dropped."""
    return func(*args)


def _latin1(text, encoding="latin1"):
    """``_codecs.encode``, which protocol-2 pickles use for ``bytes``; latin-1 only, so no
    codec module is looked up."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r}")
    return text.encode("latin-1")


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "dict"): dict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch", "Size"): torch.Size,
    ("_codecs", "encode"): _latin1,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, records: dict[str, bytes]) -> None:
        super().__init__(file)
        self.records = records
        self.storages: dict[str, torch.Tensor] = {}
        self.skipped: set[str] = set()

    def find_class(self, module: str, name: str):
        module = "builtins" if module == "__builtin__" else module  # protocol 2's name
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Storage(_STORAGE_DTYPES[name])
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)  # a dtype value of the torch module already loaded
        self.skipped.add(f"{module}.{name}")
        return type(
            name.rpartition(".")[2] or "Inert", (Inert,), {"global_name": f"{module}.{name}"}
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _Storage):
            raise pickle.UnpicklingError(f"unknown storage type {kind!r}")
        key = str(key)
        if key not in self.storages:
            data = self.records.get(key)
            if data is None:
                raise pickle.UnpicklingError(f"the archive has no record data/{key}")
            values = torch.frombuffer(bytearray(data), dtype=kind.dtype) if data else None
            if values is None:
                values = torch.empty(0, dtype=kind.dtype)
            if values.numel() != numel:
                raise pickle.UnpicklingError(f"storage {key}: {values.numel()} values, not {numel}")
            self.storages[key] = values
        return self.storages[key]


def load_without_code(path: str | Path) -> tuple[object, list[str]]:
    """The object ``torch.save`` wrote to ``path`` (zip format, torch >= 1.6), its tensors
    on the CPU, every object of a class outside the allowlist an ``Inert``; and the names
    that were left as ``Inert``. Raises ``pickle.UnpicklingError`` or ``zipfile.BadZipFile``
    (or ``OSError``) on a file it cannot read."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise pickle.UnpicklingError("not a torch.save archive (no single data.pkl)")
        root = pickles[0][: -len("data.pkl")]
        order = root + "byteorder"
        if order in names and archive.read(order).decode().strip() != "little":
            raise pickle.UnpicklingError(
                "a big-endian archive; re-save it on a little-endian machine"
            )
        prefix = root + "data/"
        records = {n[len(prefix) :]: archive.read(n) for n in names if n.startswith(prefix)}
        with archive.open(pickles[0]) as handle:
            unpickler = _Unpickler(handle, records)
            obj = unpickler.load()
    return obj, sorted(unpickler.skipped)
