// One EIE processing element (paper, Section IV and Figure 4): pointer SRAM in two banks,
// Spmat SRAM read in 64-bit lines, the activation queue, the four-stage arithmetic pipeline
// with the accumulator bypass, the destination accumulators, and the source/destination
// activation register files. docs/rtl.md maps every rule of docs/timing-model.md onto it.
//
// Pipeline of one entry (the cycle numbers of docs/timing-model.md):
//   issue  (c):   entry index -> Spmat line address; a line read only when the line
//                 buffer does not hold it
//   decode (c+1): entry from the line, relative row index -> row, codebook look-up
//   mult   (c+2): 16 x 16 product; accumulator read, bypassed from the write stage
//   acc    (c+3): round/shift, add, saturate, write the accumulator
`default_nettype none
module eie_pe #(
    parameter integer PE_INDEX    = 0,
    parameter integer N_PE        = 4,
    parameter integer CODE_BITS   = 4,
    parameter integer INDEX_BITS  = 4,
    parameter integer PTR_BITS    = 16,
    parameter integer SPMAT_DEPTH = 16,  // 64-bit words, every part of every layer
    parameter integer PTR_DEPTH   = 16,  // pointers, both banks together
    parameter integer ACT_DEPTH   = 16,  // words per activation register file
    parameter integer ACC_ROWS    = 16,  // accumulators (local rows)
    parameter integer FIFO_DEPTH  = 8,   // activation queue
    parameter integer ACC_BITS    = 32,
    parameter integer COL_BITS    = 16,  // a column of a part
    parameter integer ROW_BITS    = 25,  // a layer's row count
    parameter integer PA          = $clog2(PTR_DEPTH + 2),
    parameter integer SA          = $clog2(SPMAT_DEPTH + 1),
    parameter integer AA          = $clog2(ACT_DEPTH + 1),
    parameter integer RA          = $clog2(ACC_ROWS + 1)
) (
    input wire clk,
    input wire rst,

    // Configuration of the part being computed, held by the control.
    input wire        [                 PA-1:0] ptr_base,    // p[0] of the scanned part
    input wire        [                 SA-1:0] spmat_base,  // first word of the issuing part
    input wire signed [                    7:0] shift,       // f_in + f_w - f_acc
    input wire                                  relu,
    input wire        [           ROW_BITS-1:0] rows,        // the layer's rows (all PEs)
    input wire        [(16<<CODE_BITS)-1:0] codebook,    // 2^code_bits 16-bit weights

    // Broadcast of one non-zero activation (value, column within the part).
    input  wire                bc_valid,
    input  wire [        15:0] bc_value,
    input  wire [COL_BITS-1:0] bc_col,
    output wire                full,      // no room for a broadcast this cycle
    output wire                idle,      // nothing queued or in flight

    // The source activation at a local index, for the LNZD.
    input  wire [AA-1:0] grp_addr,
    output wire [  15:0] grp_act,

    // Write-back of one local row to the destination register file, and the swap; clearing
    // one accumulator (before the first layer).
    input wire          wb_en,
    input wire          clr_en,
    input wire [RA-1:0] wb_row,
    input wire          swap,

    // Host writes into the PE's memories (how a chip is loaded; the testbench may also
    // load them directly): 0 Spmat word, 1 pointer bank 0, 2 pointer bank 1.
    input  wire        host_we,
    input  wire [ 1:0] host_mem,
    input  wire [31:0] host_addr,
    input  wire [63:0] host_data,

    // Testbench access: write a source activation; read an accumulator and an activation.
    input  wire                ld_we,
    input  wire [      AA-1:0] ld_addr,
    input  wire [        15:0] ld_data,
    input  wire [      RA-1:0] dbg_row,
    output wire [ACC_BITS-1:0] dbg_acc,
    input  wire [      AA-1:0] dbg_addr,
    output wire [        15:0] dbg_act
);
  localparam integer EB = CODE_BITS + INDEX_BITS;  // entry bits
  localparam integer EPW = 64 / EB;  // entries per Spmat word
  localparam integer PH = (PTR_DEPTH + 2) / 2;  // words per pointer bank
  localparam integer GUARD = (ACC_BITS - 16) / 2;  // f_acc - f_out
  localparam integer SW = ACC_BITS + 40;  // wide enough for any aligned product + acc
  localparam integer FW = (FIFO_DEPTH > 1) ? $clog2(FIFO_DEPTH) : 1;
  localparam integer CW = $clog2(FIFO_DEPTH + 2);
  localparam integer SLW = (EPW > 1) ? $clog2(EPW) : 1;  // a slot within a word

  // ---- memories (loaded by the testbench, docs/rtl.md "Memory map") ----
  reg [63:0] spmat[0:SPMAT_DEPTH-1];
  reg [PTR_BITS-1:0] ptr_b0[0:PH-1];  // even pointer indices
  reg [PTR_BITS-1:0] ptr_b1[0:PH-1];  // odd pointer indices
  reg [15:0] act0[0:ACT_DEPTH-1];
  reg [15:0] act1[0:ACT_DEPTH-1];
  reg [ACC_BITS-1:0] acc[0:ACC_ROWS-1];
  reg bank;  // 0: act0 is the source, act1 the destination

  // ---- pointer read at broadcast: p[j] and p[j+1] from the two banks in one cycle ----
  wire [PA-1:0] pa = ptr_base + {{(PA > COL_BITS ? PA - COL_BITS : 0) {1'b0}}, bc_col};
  wire [PA-1:0] pa1 = pa + 1'b1;
  reg [PTR_BITS-1:0] q0, q1;
  reg pr_odd, pr_valid;
  reg [15:0] pr_value;
  always @(posedge clk) begin
    if (bc_valid) begin
      q0 <= ptr_b0[pa1[PA-1:1]];  // the even one of pa, pa + 1
      q1 <= ptr_b1[pa[PA-1:1]];  // the odd one
      pr_odd <= pa[0];
      pr_value <= bc_value;
    end
  end
  wire [PTR_BITS-1:0] pr_lo = pr_odd ? q1 : q0;
  wire [PTR_BITS-1:0] pr_hi = pr_odd ? q0 : q1;

  // ---- activation queue: value and the column's entry range ----
  reg [15:0] fq_val[0:FIFO_DEPTH-1];
  reg [PTR_BITS-1:0] fq_lo[0:FIFO_DEPTH-1];
  reg [PTR_BITS-1:0] fq_hi[0:FIFO_DEPTH-1];
  reg [FW-1:0] fq_rd, fq_wr;
  reg [CW-1:0] fq_cnt;
  // Activations held: broadcast and not yet finished (pointer read, queue, the one being
  // processed). The one being processed keeps its slot until its last entry issues.
  reg [CW-1:0] occ;

  // ---- the activation being processed ----
  reg cur_valid;  // more entries of it to issue
  reg [15:0] cur_val;
  reg [PTR_BITS-1:0] cur_e, cur_hi;

  wire from_cur = cur_valid;
  wire from_fifo = !cur_valid && fq_cnt != 0;
  wire from_pr = !cur_valid && fq_cnt == 0 && pr_valid;
  wire start = from_fifo || from_pr;
  wire [PTR_BITS-1:0] st_lo = from_fifo ? fq_lo[fq_rd] : pr_lo;
  wire [PTR_BITS-1:0] st_hi = from_fifo ? fq_hi[fq_rd] : pr_hi;
  wire [15:0] st_val = from_fifo ? fq_val[fq_rd] : pr_value;
  wire [PTR_BITS:0] st_lo1 = {1'b0, st_lo} + 1'b1;
  wire [PTR_BITS:0] cur_e1 = {1'b0, cur_e} + 1'b1;
  wire st_empty = st_lo == st_hi;  // the PE's slice of the column has no entry
  // An activation costs max(1, entries) cycles: an empty slice still takes its cycle.
  wire issue = from_cur || (start && !st_empty);
  wire [PTR_BITS-1:0] e = from_cur ? cur_e : st_lo;
  wire last = from_cur ? (cur_e1 == {1'b0, cur_hi}) : (start && (st_empty || st_lo1 == {1'b0, st_hi}));
  wire pop = last;  // the slot is free for a broadcast in this very cycle

  assign full = occ >= FIFO_DEPTH + pop;
  wire push = pr_valid && !from_pr;

  // ---- Spmat: the line buffer keeps the last line read ----
  wire [SA-1:0] word = spmat_base + e / EPW;
  wire [SLW-1:0] slot = e % EPW;
  reg line_valid;
  reg [SA-1:0] line_addr;
  reg [63:0] spmat_q, line_buf;
  wire rd = issue && !(line_valid && line_addr == word);

  // ---- pipeline registers ----
  reg s2_v, s2_first, s2_fresh;
  reg [SLW-1:0] s2_slot;
  reg [15:0] s2_a;
  reg s3_v, s3_real;
  reg [RA-1:0] s3_row;
  reg [15:0] s3_a, s3_w;
  reg s4_v, s4_real;
  reg [RA-1:0] s4_row;
  reg signed [31:0] s4_p;
  reg [ACC_BITS-1:0] s4_acc;
  reg [RA-1:0] row_prev;

  // decode
  wire [63:0] line = s2_fresh ? spmat_q : line_buf;
  wire [63:0] shifted_line = line >> (s2_slot * EB);
  wire [EB-1:0] ent = shifted_line[EB-1:0];
  wire [CODE_BITS-1:0] code = ent[CODE_BITS-1:0];
  wire [INDEX_BITS-1:0] z = ent[EB-1:CODE_BITS];
  wire [RA-1:0] row = s2_first ? z : row_prev + z + 1'b1;
  wire [15:0] weight = codebook[code*16+:16];

  // accumulate: round_shift(p, shift), add, saturate to ACC_BITS (docs/fixed-point.md)
  wire signed [SW-1:0] p_ext = {{(SW - 32) {s4_p[31]}}, s4_p};
  wire signed [SW-1:0] rnd = (shift > 0) ? ({{(SW - 1) {1'b0}}, 1'b1} <<< (shift - 1)) : {SW{1'b0}};
  wire signed [SW-1:0] aligned = (shift > 0) ? ((p_ext + rnd) >>> shift) : (p_ext <<< (-shift));
  wire signed [SW-1:0] acc_ext = {{(SW - ACC_BITS) {s4_acc[ACC_BITS-1]}}, s4_acc};
  wire signed [SW-1:0] sum = acc_ext + aligned;
  wire signed [SW-1:0] acc_max = {{(SW - ACC_BITS + 1) {1'b0}}, {(ACC_BITS - 1) {1'b1}}};
  wire signed [SW-1:0] acc_min = ~acc_max;
  wire [ACC_BITS-1:0] acc_new = (sum > acc_max) ? acc_max[ACC_BITS-1:0] :
                                (sum < acc_min) ? acc_min[ACC_BITS-1:0] : sum[ACC_BITS-1:0];
  wire s4_we = s4_v && s4_real;
  // the bypass: the mult stage reads the value the acc stage is writing in this cycle
  wire [ACC_BITS-1:0] acc_rd = (s4_we && s4_row == s3_row) ? acc_new : acc[s3_row];

  // write-back: round the accumulator to 16 bits, saturate, ReLU
  wire [ACC_BITS-1:0] wb_acc = acc[wb_row];
  wire signed [ACC_BITS:0] wb_ext = {wb_acc[ACC_BITS-1], wb_acc};
  wire signed [ACC_BITS:0] wb_half = (GUARD > 0) ? $signed({{ACC_BITS{1'b0}}, 1'b1} << (GUARD > 0 ? GUARD - 1 : 0)) : 0;
  wire signed [ACC_BITS:0] wb_rnd = (wb_ext + wb_half) >>> GUARD;
  wire signed [ACC_BITS:0] out_max = 32767;
  wire signed [ACC_BITS:0] out_min = -32768;
  wire [15:0] wb_sat = (wb_rnd > out_max) ? 16'h7fff : (wb_rnd < out_min) ? 16'h8000 : wb_rnd[15:0];
  wire [15:0] wb_out = (relu && wb_sat[15]) ? 16'h0000 : wb_sat;
  wire [ROW_BITS+RA:0] wb_global = wb_row * N_PE + PE_INDEX;
  wire wb_here = wb_en && wb_global < rows;

  assign idle = !pr_valid && fq_cnt == 0 && !cur_valid && !s2_v && !s3_v && !s4_v;
  assign grp_act = bank ? act1[grp_addr] : act0[grp_addr];
  assign dbg_acc = acc[dbg_row];
  assign dbg_act = bank ? act1[dbg_addr] : act0[dbg_addr];

  always @(posedge clk) begin
    if (rst) begin
      pr_valid <= 1'b0;
      fq_rd <= 0;
      fq_wr <= 0;
      fq_cnt <= 0;
      occ <= 0;
      cur_valid <= 1'b0;
      line_valid <= 1'b0;
      s2_v <= 1'b0;
      s3_v <= 1'b0;
      s4_v <= 1'b0;
      bank <= 1'b0;
      row_prev <= 0;
    end else begin
      // pointer read stage and queue
      pr_valid <= bc_valid;
      if (push) begin
        fq_val[fq_wr] <= pr_value;
        fq_lo[fq_wr] <= pr_lo;
        fq_hi[fq_wr] <= pr_hi;
        fq_wr <= (fq_wr == FIFO_DEPTH - 1) ? 0 : fq_wr + 1'b1;
      end
      if (from_fifo) fq_rd <= (fq_rd == FIFO_DEPTH - 1) ? 0 : fq_rd + 1'b1;
      fq_cnt <= fq_cnt + push - from_fifo;
      occ <= occ + bc_valid - pop;
      // issue
      if (from_cur) begin
        cur_e <= cur_e1[PTR_BITS-1:0];
        cur_valid <= !last;
      end else if (start) begin
        cur_e <= st_lo1[PTR_BITS-1:0];
        cur_hi <= st_hi;
        cur_val <= st_val;
        cur_valid <= !last;
      end
      if (rd) begin
        spmat_q <= spmat[word];
        line_addr <= word;
        line_valid <= 1'b1;
      end
      s2_v <= issue;
      s2_first <= !from_cur;
      s2_fresh <= rd;
      s2_slot <= slot;
      s2_a <= from_cur ? cur_val : st_val;
      // decode
      if (s2_fresh) line_buf <= spmat_q;
      if (s2_v) row_prev <= row;
      s3_v <= s2_v;
      s3_real <= code != 0;  // code 0: a padding entry
      s3_row <= row;
      s3_a <= s2_a;
      s3_w <= weight;
      // multiply, read the accumulator
      s4_v <= s3_v;
      s4_real <= s3_real;
      s4_row <= s3_row;
      s4_p <= $signed(s3_a) * $signed(s3_w);
      s4_acc <= acc_rd;
      // accumulate
      if (s4_we) acc[s4_row] <= acc_new;
      // write-back and swap
      if (wb_here) begin
        if (bank) act0[wb_row] <= wb_out;
        else act1[wb_row] <= wb_out;
        acc[wb_row] <= {ACC_BITS{1'b0}};
      end
      if (clr_en) acc[wb_row] <= {ACC_BITS{1'b0}};
      if (swap) bank <= !bank;
      if (host_we && host_mem == 2'd0) spmat[host_addr[SA-1:0]] <= host_data;
      if (host_we && host_mem == 2'd1) ptr_b0[host_addr[PA-1:0]] <= host_data[PTR_BITS-1:0];
      if (host_we && host_mem == 2'd2) ptr_b1[host_addr[PA-1:0]] <= host_data[PTR_BITS-1:0];
      if (ld_we) begin
        if (bank) act1[ld_addr] <= ld_data;
        else act0[ld_addr] <= ld_data;
      end
    end
  end
endmodule
`default_nettype wire
