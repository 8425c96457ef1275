//! A model's design parameters, its memory map (descriptors, codebook slots, image bases)
//! and the two testbench files, from the images' manifest and the vectors' manifest.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use eie_images::{Encoding, FileKind, LayerManifest, Manifest};
use eie_simulate::timing::TimingParams;
use eie_simulate::vectors::{LayerVectors, VectorManifest};

use crate::error::{Error, Result};

/// The arithmetic pipeline's stages in the design (docs/rtl.md).
pub const PIPELINE_DEPTH: u32 = 4;
/// The Spmat line the design reads, in bits (the images' word).
pub const SPMAT_WIDTH: u32 = 64;
/// Most layers a design holds (the descriptor's codebook slot is 8 bits).
pub const MAX_LAYERS: usize = 256;

/// The design's parameters (`tb_params.vh`, and the `eie_top` parameters of docs/rtl.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// PEs.
    pub n_pe: usize,
    /// Bits of a weight code.
    pub code_bits: u8,
    /// Bits of a relative row index.
    pub index_bits: u8,
    /// Bits of a column pointer.
    pub ptr_bits: u32,
    /// 64-bit Spmat words per PE, every part of every layer.
    pub spmat_depth: usize,
    /// Pointers per PE, every part of every layer.
    pub ptr_depth: usize,
    /// Words of each activation register file per PE.
    pub act_depth: usize,
    /// Accumulators per PE.
    pub acc_rows: usize,
    /// Activation queue depth.
    pub fifo_depth: usize,
    /// Accumulator width.
    pub acc_bits: u8,
    /// Bits of a column index.
    pub col_bits: u32,
    /// Bits of a row count.
    pub row_bits: u32,
    /// Words of the largest file the testbench stages (pointers, vectors).
    pub max_file_words: usize,
    /// Bits of an accumulator word in the vectors.
    pub acc_word_bits: u32,
    /// Layers.
    pub layers: usize,
    /// Descriptors (parts).
    pub parts: usize,
    /// Each layer has its own input (the vectors' "independent" mode).
    pub independent: bool,
    /// Cycles the testbench waits for a layer before it gives up.
    pub max_cycles: u64,
}

impl Params {
    /// The `eie_top` parameters that size the design for a model, by their Verilog names
    /// (rtl/eie_top.v); with `MAX_PARTS` = [`Params::parts`] and `MAX_LAYERS` =
    /// [`Params::layers`], every parameter a model sets.
    pub fn sizes(&self) -> [(&'static str, u64); 12] {
        [
            ("N_PE", self.n_pe as u64),
            ("CODE_BITS", self.code_bits.into()),
            ("INDEX_BITS", self.index_bits.into()),
            ("PTR_BITS", self.ptr_bits.into()),
            ("SPMAT_DEPTH", self.spmat_depth as u64),
            ("PTR_DEPTH", self.ptr_depth as u64),
            ("ACT_DEPTH", self.act_depth as u64),
            ("ACC_ROWS", self.acc_rows as u64),
            ("FIFO_DEPTH", self.fifo_depth as u64),
            ("ACC_BITS", self.acc_bits.into()),
            ("COL_BITS", self.col_bits.into()),
            ("ROW_BITS", self.row_bits.into()),
        ]
    }
}

/// One descriptor: a part (column batch) of a layer, or a whole layer (docs/rtl.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// The layer's first column in this part.
    pub first_col: u32,
    /// Columns of the part.
    pub cols: u32,
    /// The layer's inputs: columns before the bias column.
    pub inputs: u32,
    /// The group (of N columns) holding `first_col`.
    pub first_group: u32,
    /// Index of the part's first pointer in every PE's pointer memory.
    pub ptr_base: u32,
    /// Word of the part's first Spmat word in every PE's Spmat memory.
    pub spmat_base: u32,
    /// The layer's rows.
    pub rows: u32,
    /// f_in + f_w - f_acc: how far a product is shifted right before it is accumulated.
    pub shift: i8,
    /// Fractional bits of the input (the bias column's constant is 2^f_in).
    pub f_in: u8,
    /// The layer's last part.
    pub last: bool,
    /// The layer's last column is a folded bias.
    pub bias: bool,
    /// ReLU on write-back.
    pub relu: bool,
    /// The layer's codebook slot.
    pub layer: u8,
}

impl Descriptor {
    /// The 256-bit descriptor as 64 hex digits, most significant first (docs/rtl.md).
    pub fn hex(&self) -> String {
        let flags = u32::from(self.shift as u8)
            | u32::from(self.f_in & 15) << 8
            | u32::from(self.last) << 12
            | u32::from(self.bias) << 13
            | u32::from(self.relu) << 14
            | u32::from(self.layer) << 16;
        let words = [
            self.first_col,
            self.cols,
            self.inputs,
            self.first_group,
            self.ptr_base,
            self.spmat_base,
            self.rows,
            flags,
        ];
        words.iter().rev().map(|w| format!("{w:08x}")).collect()
    }
}

/// A file the testbench reads, with where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Load {
    pe: usize,
    path: String,
    base: usize,
    words: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LayerTb {
    name: String,
    rows: usize,
    inputs: usize,
    codebook: String,
    spmat: Vec<Load>,
    pointers: Vec<Load>,
    input: String,
    output: String,
    acc: Vec<Load>,
}

/// A model as the reference design runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Design {
    /// The parameters.
    pub params: Params,
    /// One descriptor per part, in order.
    pub descriptors: Vec<Descriptor>,
    layers: Vec<LayerTb>,
}

/// The files a testbench run needs besides the RTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `tb_params.vh`.
    pub params: String,
    /// `tb_model.vh`.
    pub model: String,
    /// `descriptors.hex`.
    pub descriptors: String,
}

/// The name of the descriptor file in the work folder.
pub const DESCRIPTORS_FILE: &str = "descriptors.hex";

/// Checks that the timing model's parameters are the ones the design implements, so that
/// their cycle counts can be compared.
pub fn check_timing(params: &TimingParams) -> Result<()> {
    let unsupported = |parameter, got: String, supported| {
        Err(Error::Unsupported {
            parameter,
            got,
            supported,
        })
    };
    if params.rules != eie_simulate::Rules::Rtl {
        return unsupported(
            "--timing-rules",
            "authors".into(),
            "this project's rules (rtl), which the design implements",
        );
    }
    if params.queue_ring {
        return unsupported(
            "the ring-buffer queue (--queue-ring)",
            "on".into(),
            "a queue that holds its full depth (the paper's)",
        );
    }
    if params.pipeline_depth != PIPELINE_DEPTH {
        return unsupported(
            "the pipeline depth",
            params.pipeline_depth.to_string(),
            "4 stages (issue, decode, multiply, accumulate)",
        );
    }
    if params.spmat_width != SPMAT_WIDTH {
        return unsupported(
            "the Spmat width",
            params.spmat_width.to_string(),
            "64-bit lines, the images' words",
        );
    }
    if !params.group_advance {
        return unsupported(
            "--no-group-advance",
            "on".into(),
            "one cycle to step past each group of N activations",
        );
    }
    Ok(())
}

/// Bits needed to hold `x`.
fn bits(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// A path as a Verilog string literal's contents.
fn verilog_path(path: &Path) -> Result<String> {
    let text = path.to_str().ok_or(Error::Path {
        path: path.to_path_buf(),
        reason: "it is not UTF-8",
    })?;
    if text.chars().any(char::is_control) {
        return Err(Error::Path {
            path: path.to_path_buf(),
            reason: "it holds a control character",
        });
    }
    // Paths reach the testbench inside macro arguments, where Icarus Verilog's preprocessor
    // does not take an escaped quote (and both tools read `\` as an escape).
    if text.contains(['"', '\\']) {
        return Err(Error::Path {
            path: path.to_path_buf(),
            reason: "it holds a quote or a backslash, which the testbench's macros cannot carry",
        });
    }
    Ok(text.to_string())
}

/// A name as a Verilog string literal's contents (printable ASCII, others as `?`).
fn verilog_text(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '\\' => "\\\\".to_string(),
            '"' => "\\\"".to_string(),
            ' '..='~' => c.to_string(),
            _ => "?".to_string(),
        })
        .collect()
}

fn image(
    layer: &LayerManifest,
    kind: FileKind,
    pe: Option<usize>,
) -> Result<&eie_images::FileEntry> {
    layer
        .files
        .iter()
        .find(|f| f.kind == kind && f.pe == pe && f.encoding == Encoding::Readmemh)
        .ok_or_else(|| Error::MissingImage {
            layer: layer.name.clone(),
            kind: match kind {
                FileKind::Spmat => "Spmat",
                FileKind::Pointers => "pointer",
                FileKind::Codebook => "codebook",
            },
            pe: pe.map(|k| format!(" for PE {k}")).unwrap_or_default(),
        })
}

/// Plans the design for the model in `model_dir` (its `manifest.json` is `images`) and the
/// vectors in `vectors_dir` (`vectors`), with the queue depth and the accumulator width of
/// the run, waiting at most `max_cycles` for any layer. Checks every parameter the design
/// fixes before anything runs.
pub fn plan(
    images: &Manifest,
    model_dir: &Path,
    vectors: &VectorManifest,
    vectors_dir: &Path,
    fifo_depth: usize,
    max_cycles: u64,
) -> Result<Design> {
    let canonical = |dir: &Path| {
        std::fs::canonicalize(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })
    };
    let (model_dir, vectors_dir) = (canonical(model_dir)?, canonical(vectors_dir)?);
    let groups = logical_layers(images);
    if groups.len() != vectors.layers.len() {
        return Err(Error::Mismatch {
            reason: format!(
                "the images hold {} layers, the vectors {}",
                groups.len(),
                vectors.layers.len()
            ),
        });
    }
    let (n, code_bits, index_bits) = one_layout(images, groups.len())?;
    let mut planner = Planner {
        model_dir,
        vectors_dir,
        n,
        descriptors: Vec::new(),
        layers: Vec::new(),
        ptr_base: 0,
        spmat_base: 0,
        act_depth: 1,
        acc_rows: 1,
        max_words: 1,
        col_max: 1,
        row_max: 1,
    };
    for (index, (group, vl)) in groups.iter().zip(&vectors.layers).enumerate() {
        planner.layer(index, group, vl)?;
    }
    let p = &planner;
    let acc_word_bits = vectors
        .layers
        .first()
        .and_then(|l| l.files.iter().find(|f| f.kind == "accumulators"))
        .map_or(32, |f| f.word_bits);
    let params = Params {
        n_pe: n,
        code_bits,
        index_bits,
        ptr_bits: images.pointer_bits,
        spmat_depth: p.spmat_base.max(1),
        ptr_depth: p.ptr_base.max(1),
        act_depth: p.act_depth.max(p.acc_rows),
        acc_rows: p.acc_rows,
        fifo_depth,
        acc_bits: vectors.acc_bits,
        // Column and group registers also address the activation register files (whose depth
        // covers the rows too): wide enough for both.
        col_bits: (bits((p.col_max + 2 * n) as u64) + 1)
            .max(bits(p.act_depth.max(p.acc_rows) as u64 + 1) + 1),
        row_bits: bits(p.row_max as u64) + 1,
        max_file_words: p.max_words.max(1 << code_bits),
        acc_word_bits,
        layers: p.layers.len(),
        parts: p.descriptors.len(),
        independent: vectors.mode == "independent",
        max_cycles,
    };
    Ok(Design {
        params,
        descriptors: planner.descriptors,
        layers: planner.layers,
    })
}

/// The images' parts, grouped into logical layers.
fn logical_layers(images: &Manifest) -> Vec<Vec<&LayerManifest>> {
    let mut groups: Vec<Vec<&LayerManifest>> = Vec::new();
    for layer in &images.layers {
        match (&layer.part, groups.last_mut()) {
            (Some(part), Some(group)) if part.first_col > 0 => group.push(layer),
            _ => groups.push(vec![layer]),
        }
    }
    groups
}

/// The one PE count and entry layout of every layer (the design has one PE array), for at
/// most [`MAX_LAYERS`] layers.
fn one_layout(images: &Manifest, layers: usize) -> Result<(usize, u8, u8)> {
    if layers > MAX_LAYERS {
        return Err(Error::Unsupported {
            parameter: "the number of layers",
            got: layers.to_string(),
            supported: "at most 256 (8-bit codebook slots)",
        });
    }
    let first = &images.layers.first().ok_or(Error::Mismatch {
        reason: "the images hold no layer".into(),
    })?;
    let (n, code_bits, index_bits) = (first.pes, first.code_bits, first.index_bits);
    for layer in &images.layers {
        if layer.pes != n {
            return Err(Error::Unsupported {
                parameter: "layers packed for different PE counts",
                got: format!(
                    "\"{}\" on {} PEs, \"{}\" on {n}",
                    layer.name, layer.pes, first.name
                ),
                supported: "one PE array for the whole model",
            });
        }
        if (layer.code_bits, layer.index_bits) != (code_bits, index_bits) {
            return Err(Error::Unsupported {
                parameter: "layers with different code or index widths",
                got: format!(
                    "\"{}\" {}+{} bits, \"{}\" {code_bits}+{index_bits}",
                    layer.name, layer.code_bits, layer.index_bits, first.name
                ),
                supported: "one entry layout for the whole model",
            });
        }
    }
    Ok((n, code_bits, index_bits))
}

/// A descriptor field, which the design holds in 32 bits.
fn field(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Unsupported {
        parameter: "a descriptor field",
        got: format!("{what} = {v}"),
        supported: "32-bit fields",
    })
}

/// The plan under way: the layers so far, where the next part's memories start, and the
/// sizes the design's memories must have.
struct Planner {
    model_dir: PathBuf,
    vectors_dir: PathBuf,
    n: usize,
    descriptors: Vec<Descriptor>,
    layers: Vec<LayerTb>,
    ptr_base: usize,
    spmat_base: usize,
    act_depth: usize,
    acc_rows: usize,
    max_words: usize,
    col_max: usize,
    row_max: usize,
}

impl Planner {
    /// Layer `index`: its parts in the images (`group`) against its vectors (`vl`).
    fn layer(&mut self, index: usize, group: &[&LayerManifest], vl: &LayerVectors) -> Result<()> {
        let (n, head) = (self.n, group[0]);
        let total_cols = head.part.as_ref().map_or(head.cols, |p| p.total_cols);
        let mismatch = |reason: String| Err(Error::Mismatch { reason });
        if head.name != vl.name || head.rows != vl.rows || vl.pes != n {
            return mismatch(format!(
                "layer {index} is \"{}\" ({} rows) in the images, \"{}\" ({} rows) in the vectors",
                head.name, head.rows, vl.name, vl.rows
            ));
        }
        if vl.inputs + usize::from(vl.bias) != total_cols {
            return mismatch(format!(
                "layer \"{}\" has {total_cols} columns, the vectors give {} inputs{}",
                head.name,
                vl.inputs,
                if vl.bias { " and a bias" } else { "" }
            ));
        }
        let mut tb = LayerTb {
            name: head.name.clone(),
            rows: head.rows,
            inputs: vl.inputs,
            codebook: verilog_path(
                &self
                    .model_dir
                    .join(&image(head, FileKind::Codebook, None)?.path),
            )?,
            spmat: Vec::new(),
            pointers: Vec::new(),
            input: String::new(),
            output: String::new(),
            acc: Vec::new(),
        };
        for (p, part) in group.iter().enumerate() {
            self.part(part, &mut tb, vl, index, p + 1 == group.len())?;
        }
        self.vectors(&mut tb, vl)?;
        self.act_depth = self
            .act_depth
            .max(total_cols.div_ceil(n))
            .max(head.rows.div_ceil(n));
        self.acc_rows = self.acc_rows.max(head.rows.div_ceil(n));
        self.col_max = self.col_max.max(total_cols);
        self.row_max = self.row_max.max(head.rows);
        self.layers.push(tb);
        Ok(())
    }

    /// One part of layer `index` (its last when `last`): every PE's images and its
    /// descriptor.
    fn part(
        &mut self,
        part: &LayerManifest,
        tb: &mut LayerTb,
        vl: &LayerVectors,
        index: usize,
        last: bool,
    ) -> Result<()> {
        let first_col = part.part.as_ref().map_or(0, |p| p.first_col);
        let mut words = 0usize;
        for k in 0..self.n {
            let s = image(part, FileKind::Spmat, Some(k))?;
            let ptr = image(part, FileKind::Pointers, Some(k))?;
            if ptr.words != part.cols + 1 {
                return Err(Error::Mismatch {
                    reason: format!(
                        "{} lists {} pointers for a part of {} columns",
                        ptr.path, ptr.words, part.cols
                    ),
                });
            }
            tb.spmat.push(Load {
                pe: k,
                path: verilog_path(&self.model_dir.join(&s.path))?,
                base: self.spmat_base,
                words: s.words,
            });
            tb.pointers.push(Load {
                pe: k,
                path: verilog_path(&self.model_dir.join(&ptr.path))?,
                base: self.ptr_base,
                words: ptr.words,
            });
            words = words.max(s.words);
            // the testbench stages pointer files, and Spmat files when loading through the
            // host port
            self.max_words = self.max_words.max(ptr.words).max(s.words);
        }
        let shift = i32::from(vl.frac_in) + i32::from(vl.frac_weights) - i32::from(vl.frac_acc);
        self.descriptors.push(Descriptor {
            first_col: field("first column", first_col)?,
            cols: field("columns", part.cols)?,
            inputs: field("inputs", vl.inputs)?,
            first_group: field("first group", first_col / self.n)?,
            ptr_base: field("pointer base", self.ptr_base)?,
            spmat_base: field("Spmat base", self.spmat_base)?,
            rows: field("rows", tb.rows)?,
            shift: shift as i8,
            f_in: vl.frac_in,
            last,
            bias: vl.bias,
            relu: vl.relu,
            layer: index as u8,
        });
        self.ptr_base += part.cols + 1;
        self.spmat_base += words;
        Ok(())
    }

    /// The layer's vector files: its input, its output and every PE's accumulators.
    fn vectors(&mut self, tb: &mut LayerTb, vl: &LayerVectors) -> Result<()> {
        let file = |kind: &str, pe: Option<usize>| -> Result<&eie_simulate::vectors::VectorFile> {
            vl.files
                .iter()
                .find(|f| f.kind == kind && f.pe == pe && f.encoding == "readmemh")
                .ok_or_else(|| Error::Mismatch {
                    reason: format!("the vectors have no {kind} file for layer \"{}\"", vl.name),
                })
        };
        let input = file("input", None)?;
        let output = file("output", None)?;
        tb.input = verilog_path(&self.vectors_dir.join(&input.path))?;
        tb.output = verilog_path(&self.vectors_dir.join(&output.path))?;
        self.max_words = self.max_words.max(input.words).max(output.words);
        for k in 0..self.n {
            let a = file("accumulators", Some(k))?;
            self.max_words = self.max_words.max(a.words);
            tb.acc.push(Load {
                pe: k,
                path: verilog_path(&self.vectors_dir.join(&a.path))?,
                base: 0,
                words: a.words,
            });
        }
        Ok(())
    }
}

impl Design {
    /// The testbench files. They name `descriptors.hex` relative to the work folder, where
    /// the testbench runs.
    pub fn render(&self) -> Rendered {
        let p = &self.params;
        let mut params =
            String::from("// Written by eie-compress rtl-check: the design's parameters.\n");
        for (name, value) in p.sizes().into_iter().chain([
            ("MAX_FILE_WORDS", p.max_file_words as u64),
            ("ACC_WORD_BITS", p.acc_word_bits.into()),
            ("N_LAYERS", p.layers as u64),
            ("N_PARTS", p.parts as u64),
            ("INDEPENDENT", p.independent.into()),
            // a Verilog integer is 32 bits
            ("MAX_CYCLES", p.max_cycles.min(i32::MAX as u64)),
        ]) {
            writeln!(params, "localparam integer {name} = {value};").expect("to a string");
        }
        let descriptors: String = self.descriptors.iter().map(|d| d.hex() + "\n").collect();
        let desc_path = DESCRIPTORS_FILE;
        let mut m = String::from(
            "// Written by eie-compress rtl-check from the model's manifest.json and the\n\
             // vectors' manifest.json: what to load where, and what to expect.\n",
        );
        m += "task automatic load_model;\n  begin\n";
        writeln!(m, "    `LOAD_DESCRIPTORS(\"{desc_path}\")").unwrap();
        for (l, layer) in self.layers.iter().enumerate() {
            writeln!(m, "    // layer {l}: {}", verilog_text(&layer.name)).unwrap();
            writeln!(m, "    `LOAD_CODEBOOK({l}, \"{}\")", layer.codebook).unwrap();
            for s in &layer.spmat {
                writeln!(
                    m,
                    "    `LOAD_SPMAT({}, \"{}\", {}, {})",
                    s.pe, s.path, s.base, s.words
                )
                .unwrap();
            }
            for s in &layer.pointers {
                writeln!(
                    m,
                    "    `LOAD_PTR({}, \"{}\", {}, {})",
                    s.pe, s.path, s.base, s.words
                )
                .unwrap();
            }
        }
        m += "  end\nendtask\n\n";
        m += "task automatic layer_name(input integer l, output string s);\n  case (l)\n";
        for (l, layer) in self.layers.iter().enumerate() {
            writeln!(m, "    {l}: s = \"{}\";", verilog_text(&layer.name)).unwrap();
        }
        m += "    default: s = \"?\";\n  endcase\nendtask\n\n";
        m += "task automatic load_layer_input(input integer l);\n  case (l)\n";
        for (l, layer) in self.layers.iter().enumerate() {
            if l == 0 || p.independent {
                writeln!(
                    m,
                    "    {l}: load_input(\"{}\", {});",
                    layer.input, layer.inputs
                )
                .unwrap();
            }
        }
        m += "    default: ;\n  endcase\nendtask\n\n";
        m += "task automatic check_layer_acc(input integer l);\n  case (l)\n";
        for (l, layer) in self.layers.iter().enumerate() {
            writeln!(m, "    {l}: begin").unwrap();
            let name = verilog_text(&layer.name);
            for a in &layer.acc {
                writeln!(
                    m,
                    "      check_acc({l}, \"{name}\", {}, \"{}\", {});",
                    a.pe, a.path, a.words
                )
                .unwrap();
            }
            m += "    end\n";
        }
        m += "    default: ;\n  endcase\nendtask\n\n";
        m += "task automatic check_layer_out(input integer l);\n  case (l)\n";
        for (l, layer) in self.layers.iter().enumerate() {
            writeln!(
                m,
                "    {l}: check_out({l}, \"{}\", \"{}\", {});",
                verilog_text(&layer.name),
                layer.output,
                layer.rows
            )
            .unwrap();
        }
        m += "    default: ;\n  endcase\nendtask\n";
        Rendered {
            params,
            model: m,
            descriptors,
        }
    }
}
