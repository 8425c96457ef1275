"""Type stubs of eie_compress: thin bindings over eie-compress's commands library.

Keyword arguments are named as the command line's flags with ``_`` for ``-``
(``--act-frac`` is ``act_frac``) and as recipe keys (``density``, ``code_bits``,
``per_row``, ...): docs/python.md lists them. A keyword a call does not take raises
``EieError`` naming it. Every failure of the tool raises ``EieError`` with the one-line
message the command line prints; an argument of the wrong Python type raises ``TypeError``.
"""

import os
import pathlib
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str

PathLike = Union[str, "os.PathLike[str]"]
ArrayLike = Any  # a numpy array, a CPU PyTorch tensor, or anything numpy.asarray takes
Tensors = Mapping[str, ArrayLike]  # a state_dict, or {name: array}

class EieError(Exception):
    """A request the tool refused or a run that failed."""

def compress(
    model: Union[PathLike, Tensors],
    out: Optional[PathLike] = None,
    *,
    force: bool = False,
    quiet: bool = False,
    **settings: Any,
) -> "Compressed":
    """Prunes, weight-shares and packs ``model`` as ``eie-compress compress`` does.

    ``model``: a ``.safetensors`` file, a sharded checkpoint's index, a Hugging Face
    folder, or a state_dict (PyTorch ``[out, in]`` naming). ``out``: the output folder
    (default: a temporary folder the result owns; ``Compressed.save`` copies it).
    ``settings``: ``pes``, ``arch``, ``layers``, ``recipe``, ``no_bias_column``,
    ``conv_on_eie``, ``dataset``, ``range``, ``eval_range``, ``retrain``, ``teacher``,
    ``calibration``, ``calibration_range``, ``calibration_samples``, ``act_frac``,
    ``acc_bits``, ``relu_last``, ``pointer_bits``, ``spmat_kib``, ``pointer_kib``,
    ``column_batch``, ``allow_overflow``, ``scale``, ``mean``, ``std``, ``max_memory``, and
    every per-layer, run-wide and retraining setting by its recipe key (``density``,
    ``code_bits``, ``index_bits``, ``epochs``, ...). Progress goes to stderr unless
    ``quiet``.
    """

def load(path: PathLike) -> "Compressed":
    """Loads an output folder of ``compress`` or ``pack`` (or a ``model.eie``)."""

def pack(
    tensors: Union[PathLike, Tensors],
    out: Optional[PathLike] = None,
    *,
    force: bool = False,
    quiet: bool = False,
    **settings: Any,
) -> "Compressed":
    """Packs tensors already pruned and weight-shared, as ``eie-compress pack`` does.

    ``settings``: ``pes``, ``layers``, ``no_bias_column``, ``code_bits``, ``index_bits``,
    ``pointer_bits``, ``spmat_kib``, ``pointer_kib``, ``column_batch``, ``allow_overflow``.
    """

def eval(
    model: Union[PathLike, Tensors, "Compressed"],
    dataset: Optional[str] = None,
    *,
    inputs: Optional[ArrayLike] = None,
    labels: Optional[ArrayLike] = None,
    **settings: Any,
) -> dict[str, Any]:
    """Top-1 accuracy (a language model's perplexity) at every stage, as ``eval --json``.

    ``model``: a checkpoint, a state_dict, or a ``Compressed`` made by ``compress`` (then
    every stage of it too, down to the bit-exact model on its images; with a checkpoint,
    ``compressed=PATH`` names the folder). The samples: ``dataset`` (``"mnist:DIR"``,
    ``"synthetic"``, ``"text:FILE"``, ...) or ``inputs`` (one sample per row) and
    ``labels``. ``settings``: ``range``, ``arch``, ``layers``, ``act_frac``, ``acc_bits``,
    ``relu_last``, the timing model's keywords, ``energy_table``, ``context``, ``stride``,
    ``scale``, ``mean``, ``std``, ``max_memory``.
    """

class Compressed:
    """A packed model: an output folder of ``compress`` or ``pack``, loaded once."""

    @property
    def path(self) -> pathlib.Path:
        """The folder (or ``model.eie``), absolute."""
    @property
    def report(self) -> Optional[dict[str, Any]]:
        """``report.json`` (what ``compress --json`` prints); None without one."""
    @property
    def settings(self) -> dict[str, str]:
        """The settings ``model.eie`` records."""
    @property
    def pes(self) -> int: ...
    @property
    def layers(self) -> list["Layer"]: ...
    def layer(self, name: str) -> "Layer": ...
    def simulate(self, x: Optional[ArrayLike] = None, **settings: Any) -> "Simulation":
        """The bit-exact functional model and the timing model, as ``simulate`` runs them.

        ``x``: one vector or one per row; else ``dataset`` (``range``, ``scale``, ``mean``,
        ``std``, ``max_memory``), else one generated vector (``act_density``, ``seed``).
        ``settings``: ``layer``, ``act_frac``, ``acc_bits``, ``relu_last``, ``cpu``,
        ``energy_table``, and the timing model's ``fifo``, ``clock_mhz``, ``spmat_width``,
        ``pipeline_depth``, ``queue_ring``, ``no_group_advance``, ``timing_rules``.
        """
    def report_html(
        self,
        out: Optional[Union[str, os.PathLike]] = None,
        x: Optional[ArrayLike] = None,
        *,
        force: bool = False,
        checkpoint: Optional[Union[str, os.PathLike]] = None,
        **settings: Any,
    ) -> pathlib.Path:
        """The HTML report, as ``eie-compress report`` writes it: report.json's page with a
        simulation on ``x``, a ``dataset`` or one generated vector (as :meth:`simulate` takes
        them), and with ``checkpoint`` and a dataset, every stage's accuracy. Written to
        ``out``, by default ``NAME-report.html`` beside the folder (never inside it);
        ``force`` replaces only a page eie-compress wrote. ``settings``: ``act_frac``,
        ``acc_bits``, ``relu_last``, ``energy_table`` and the timing model's settings.
        Returns the page's path.
        """
    def run_layer(self, name: str, x: ArrayLike, **settings: Any) -> "LayerRun":
        """One layer on one vector, as ``simulate --layer NAME`` runs it.

        ``settings``: ``act_frac`` (its input's and output's fractions), ``acc_bits``,
        ``relu_last``, and the timing model's keywords as ``simulate`` takes them.
        """
    def testbench(self, x: Optional[ArrayLike] = None, **settings: Any) -> "Testbench":
        """The reference design's parameters and descriptors, and the runs it must match,
        as ``rtl-check`` plans them, on ``x``, a ``dataset`` or a generated vector as
        ``simulate`` takes them. ``settings``: ``act_frac``, ``acc_bits``, ``relu_last``, and
        the timing model's keywords.
        """
    def save(self, dir: PathLike, *, force: bool = False) -> pathlib.Path:
        """Copies the folder into ``dir``, its images verified first, published at once;
        never over an input, nor from a folder another run rewrote since it was loaded."""

class Layer:
    """One packed layer: its shape, codebook and every PE's arrays."""

    @property
    def name(self) -> str: ...
    @property
    def rows(self) -> int: ...
    @property
    def cols(self) -> int:
        """Columns, the folded bias column included."""
    @property
    def inputs(self) -> int: ...
    @property
    def has_bias(self) -> bool: ...
    @property
    def pes(self) -> int: ...
    @property
    def parts(self) -> int:
        """Column batches the layer is split into."""
    @property
    def code_bits(self) -> int: ...
    @property
    def index_bits(self) -> int: ...
    @property
    def codebook(self) -> npt.NDArray[np.float32]: ...
    @property
    def entries_per_pe(self) -> npt.NDArray[np.uint64]: ...
    @property
    def padding_per_pe(self) -> npt.NDArray[np.uint64]: ...
    def codes(self, pe: int, part: int = 0) -> npt.NDArray[np.uint8]: ...
    def indices(self, pe: int, part: int = 0) -> npt.NDArray[np.uint8]: ...
    def pointers(self, pe: int, part: int = 0) -> npt.NDArray[np.uint32]: ...
    def dense(
        self,
    ) -> tuple[npt.NDArray[np.float32], Optional[npt.NDArray[np.float32]]]: ...

class Simulation:
    """A simulation: ``report`` as ``simulate --json`` prints it, and arrays."""

    report: dict[str, Any]
    layers: list[str]
    outputs: Optional[npt.NDArray[np.int16]]
    """The last layer's 16-bit outputs, vectors x outputs (None: a described model)."""
    outputs_float: Optional[npt.NDArray[np.float32]]
    frac_bits: Optional[int]
    cycles: Optional[npt.NDArray[np.uint64]]
    """Cycles, vectors x layers."""
    time_us: Optional[npt.NDArray[np.float64]]
    energy_nj: Optional[npt.NDArray[np.float64]]
    cycles_per_inference: float

class LayerRun:
    """One layer's run: the values a testbench compares."""

    name: str
    pes: int
    input: npt.NDArray[np.int16]
    f_in: int
    f_out: int
    relu: bool
    accumulators: list[npt.NDArray[np.int64]]
    """Per PE, its rows' accumulators before write-back (row r: PE r % pes, r // pes)."""
    outputs: npt.NDArray[np.int16]
    outputs_float: npt.NDArray[np.float32]
    cycles: int
    timing: dict[str, Any]

class Testbench:
    """The reference design's plan for a model, and the runs it must match."""

    mode: str
    params: dict[str, int]
    """``eie_top``'s parameters (N_PE, CODE_BITS, ...), and ``max_cycles``."""
    descriptors: list[int]
    """One 256-bit descriptor per part (field 0 in the low 32 bits)."""
    descriptor_fields: list[dict[str, Any]]
    runs: list[LayerRun]
