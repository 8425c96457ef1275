// The EIE array: N PEs, the central control with the LNZD quadtree that broadcasts one
// non-zero activation per cycle, and the layer sequencer (column batches, bias column,
// write-back and the source/destination swap between chained layers). docs/rtl.md.
`default_nettype none
module eie_top #(
    parameter integer N_PE        = 4,
    parameter integer CODE_BITS   = 4,
    parameter integer INDEX_BITS  = 4,
    parameter integer PTR_BITS    = 16,
    parameter integer SPMAT_DEPTH = 16,
    parameter integer PTR_DEPTH   = 16,
    parameter integer ACT_DEPTH   = 16,
    parameter integer ACC_ROWS    = 16,
    parameter integer FIFO_DEPTH  = 8,
    parameter integer ACC_BITS    = 32,
    parameter integer MAX_PARTS   = 4,   // descriptors
    parameter integer MAX_LAYERS  = 4,   // codebooks
    parameter integer COL_BITS    = 25,  // columns of a layer
    parameter integer ROW_BITS    = 25,
    parameter integer PA          = $clog2(PTR_DEPTH + 2),
    parameter integer SA          = $clog2(SPMAT_DEPTH + 1),
    parameter integer AA          = $clog2(ACT_DEPTH + 1),
    parameter integer RA          = $clog2(ACC_ROWS + 1),
    parameter integer KA          = (N_PE > 1) ? $clog2(N_PE) : 1,
    parameter integer DA          = $clog2(MAX_PARTS + 1)
) (
    input  wire                clk,
    input  wire                rst,
    input  wire                start,     // run the model from descriptor 0
    input  wire [      DA-1:0] n_parts,   // descriptors in use
    input  wire                go,        // leave a hold
    output wire                hold,      // waiting for `go`
    output wire [         1:0] phase,     // 1: accumulators final; 2: outputs written
    output wire                done,
    output reg  [        31:0] cycles,    // of the layer just computed
    // host writes (docs/rtl.md "Memory map"): host_mem 0..2 a PE's Spmat word / pointer
    // bank 0 / bank 1 (PE host_pe), 3 a descriptor's 64-bit quarter (address = part x 4 +
    // quarter), 4 a codebook word (address = slot x 2^code_bits + code)
    input  wire                host_we,
    input  wire [      KA-1:0] host_pe,
    input  wire [         2:0] host_mem,
    input  wire [        31:0] host_addr,
    input  wire [        63:0] host_data,
    // testbench access
    input  wire                ld_we,     // write a source activation
    input  wire [      KA-1:0] ld_pe,
    input  wire [      AA-1:0] ld_addr,
    input  wire [        15:0] ld_data,
    input  wire [      KA-1:0] dbg_pe,
    input  wire [      RA-1:0] dbg_row,
    output wire [ACC_BITS-1:0] dbg_acc,
    input  wire [      AA-1:0] dbg_addr,
    output wire [        15:0] dbg_act
);
  localparam integer LEVELS = ($clog2(N_PE) + 1) / 2;  // of the LNZD tree
  localparam integer LW = (LEVELS > 0) ? 2 * LEVELS : 1;
  localparam integer NC = 1 << CODE_BITS;
  localparam integer CBA = $clog2(MAX_LAYERS * NC + 1);

  // ---- memories: descriptors (one per part, docs/rtl.md) and codebooks ----
  reg [255:0] desc[0:MAX_PARTS-1];
  reg [15:0] cb_mem[0:MAX_LAYERS*NC-1];

  localparam [3:0] S_IDLE = 0, S_SCAN = 1, S_BARRIER = 2, S_DRAIN = 3, S_HOLD_ACC = 4,
      S_WB = 5, S_HOLD_OUT = 6, S_DONE = 7, S_CLEAR = 8;
  reg [3:0] state;
  reg [DA-1:0] scan_part, cfg_part;  // the part being scanned; the part the PEs work on
  reg [COL_BITS-1:0] g, gcol;  // the group and its first column (g x N)
  reg [N_PE-1:0] mask;  // non-zeros of the group not yet broadcast
  reg [16*N_PE-1:0] val;  // the group's activations, 16 bits each
  reg [7:0] wait_cnt;  // LNZD fill
  reg [31:0] cyc;
  reg [RA-1:0] wb_row;

  // descriptor fields: first column [31:0], columns [63:32], inputs [95:64] (docs/rtl.md)
  wire [255:0] ds = desc[scan_part];
  wire [255:0] dc = desc[cfg_part];
  wire [255:0] dn = desc[scan_part+1'b1];

  // ---- PEs ----
  wire [N_PE-1:0] full, idle;
  wire [15:0] grp_act[0:N_PE-1];
  wire [ACC_BITS-1:0] acc_all[0:N_PE-1];
  wire [15:0] act_all[0:N_PE-1];
  wire stall = |full;
  wire all_idle = &idle;
  wire lead_found;
  wire [LW-1:0] lead;
  eie_lnzd #(
      .N (N_PE),
      .L (LEVELS),
      .IW(LW)
  ) u_lnzd (
      .in   (mask),
      .found(lead_found),
      .index(lead)
  );

  // ---- scan: one non-zero broadcast per cycle, else one cycle to step past the group ----
  wire wait_done = wait_cnt == 0;
  wire scan_now = (state == S_SCAN && wait_done) || (state == S_BARRIER && all_idle && LEVELS == 0);
  wire bc_valid = scan_now && lead_found && !stall;
  wire [COL_BITS-1:0] lead_col = gcol + lead;
  wire [COL_BITS-1:0] bc_col = lead_col - ds[0+:COL_BITS];
  wire [15:0] bc_value = val[lead[KA-1:0]*16+:16];
  wire advance = scan_now && !lead_found;
  wire [COL_BITS-1:0] part_end = ds[0+:COL_BITS] + ds[32+:COL_BITS];
  wire [COL_BITS:0] next_gcol = gcol + N_PE;
  wire part_over = next_gcol >= part_end;
  wire part_last = ds[236];
  wire model_last = scan_part + 1'b1 == n_parts;

  // The group to load into `mask`: the first of a part (at a start, or the advance out of
  // a part whose layer goes on), or the next of this part.
  // After `start` the accumulators are cleared row by row (not counted), then the first
  // layer starts; after each layer's write-back the next.
  wire cleared = state == S_CLEAR && wb_row == ACC_ROWS - 1;
  wire new_layer = cleared || (state == S_HOLD_OUT && go && !model_last);
  wire [255:0] dl = (state == S_CLEAR) ? desc[0] : (new_layer || (advance && part_over)) ? dn : ds;
  wire [COL_BITS-1:0] ld_g = (new_layer || (advance && part_over)) ? dl[96+:COL_BITS] : g + 1'b1;
  wire [COL_BITS-1:0] ld_gcol = (new_layer || (advance && part_over)) ? dl[96+:COL_BITS] * N_PE : next_gcol[COL_BITS-1:0];
  wire [N_PE-1:0] ld_mask;
  wire [16*N_PE-1:0] ld_val;

  // the codebook of the layer the PEs work on
  wire [(16*NC)-1:0] codebook;
  genvar k;
  generate
    for (k = 0; k < NC; k = k + 1) begin : g_cb
      wire [CBA-1:0] a = dc[240+:8] * NC + k;
      assign codebook[k*16+:16] = cb_mem[a];
    end
  endgenerate

  generate
    for (k = 0; k < N_PE; k = k + 1) begin : g_pe
      wire [COL_BITS-1:0] col = ld_gcol + k;
      wire in_part = col >= dl[0+:COL_BITS] && col < dl[0+:COL_BITS] + dl[32+:COL_BITS];
      wire is_input = col < dl[64+:COL_BITS];
      wire is_bias = dl[236+1] && col == dl[64+:COL_BITS];
      assign ld_mask[k] = in_part && (is_input ? grp_act[k] != 0 : is_bias);
      assign ld_val[k*16+:16] = is_input ? grp_act[k] : (16'd1 << dl[232+:4]);
      eie_pe #(
          .PE_INDEX(k),
          .N_PE(N_PE),
          .CODE_BITS(CODE_BITS),
          .INDEX_BITS(INDEX_BITS),
          .PTR_BITS(PTR_BITS),
          .SPMAT_DEPTH(SPMAT_DEPTH),
          .PTR_DEPTH(PTR_DEPTH),
          .ACT_DEPTH(ACT_DEPTH),
          .ACC_ROWS(ACC_ROWS),
          .FIFO_DEPTH(FIFO_DEPTH),
          .ACC_BITS(ACC_BITS),
          .COL_BITS(COL_BITS),
          .ROW_BITS(ROW_BITS),
          .PA(PA),
          .SA(SA),
          .AA(AA),
          .RA(RA)
      ) u_pe (
          .clk(clk),
          .rst(rst),
          .ptr_base(ds[128+:PA]),
          .spmat_base(dc[160+:SA]),
          .shift(dc[224+:8]),
          .relu(dc[238]),
          .rows(dc[192+:ROW_BITS]),
          .codebook(codebook),
          .bc_valid(bc_valid),
          .bc_value(bc_value),
          .bc_col(bc_col),
          .full(full[k]),
          .idle(idle[k]),
          .grp_addr(ld_g[AA-1:0]),
          .grp_act(grp_act[k]),
          .wb_en(state == S_WB),
          .clr_en(state == S_CLEAR),
          .wb_row(wb_row),
          .swap(state == S_WB && wb_row == ACC_ROWS - 1),
          .host_we(host_we && host_pe == k && host_mem < 3'd3),
          .host_mem(host_mem[1:0]),
          .host_addr(host_addr),
          .host_data(host_data),
          .ld_we(ld_we && ld_pe == k),
          .ld_addr(ld_addr),
          .ld_data(ld_data),
          .dbg_row(dbg_row),
          .dbg_acc(acc_all[k]),
          .dbg_addr(dbg_addr),
          .dbg_act(act_all[k])
      );
    end
  endgenerate


  assign dbg_acc = acc_all[dbg_pe];
  assign dbg_act = act_all[dbg_pe];
  assign hold = state == S_HOLD_ACC || state == S_HOLD_OUT;
  assign phase = (state == S_HOLD_ACC) ? 2'd1 : (state == S_HOLD_OUT) ? 2'd2 : 2'd0;
  assign done = state == S_DONE;

  always @(posedge clk) begin
    if (host_we && host_mem == 3'd3) desc[host_addr[DA+1:2]][host_addr[1:0]*64+:64] <= host_data;
    if (host_we && host_mem == 3'd4) cb_mem[host_addr[CBA-1:0]] <= host_data[15:0];
  end

  always @(posedge clk) begin
    if (rst) begin
      state <= S_IDLE;
      scan_part <= 0;
      cfg_part <= 0;
      mask <= 0;
      wait_cnt <= 0;
      cyc <= 0;
      cycles <= 0;
      wb_row <= 0;
    end else begin
      if (state == S_SCAN || state == S_BARRIER || state == S_DRAIN) cyc <= cyc + 1;
      if (new_layer || advance) begin
        g <= ld_g;
        gcol <= ld_gcol;
        mask <= ld_mask;
        val <= ld_val;
      end
      if (bc_valid) mask[lead[KA-1:0]] <= 1'b0;
      if (new_layer) begin
        // the model's layer starts: the LNZD tree fills first
        if (state != S_CLEAR) begin
          scan_part <= scan_part + 1'b1;
          cfg_part <= scan_part + 1'b1;
        end
        cyc <= 0;
        wait_cnt <= LEVELS;
        state <= S_SCAN;
      end
      case (state)
        S_IDLE:
        if (start) begin
          wb_row <= 0;
          state <= S_CLEAR;
        end
        S_CLEAR: wb_row <= wb_row + 1'b1;
        S_SCAN: begin
          if (!wait_done) wait_cnt <= wait_cnt - 1'b1;
          else if (advance && part_over) begin
            if (part_last) state <= S_DRAIN;
            else begin
              scan_part <= scan_part + 1'b1;
              state <= S_BARRIER;
            end
          end
        end
        // every PE finishes the batch and the pipeline drains before the next batch's
        // pointers are used; then the LNZD tree restarts
        S_BARRIER:
        if (all_idle) begin
          cfg_part <= scan_part;
          if (LEVELS == 0) begin
            if (advance && part_over) begin
              if (part_last) state <= S_DRAIN;
              else scan_part <= scan_part + 1'b1;
            end else state <= S_SCAN;
          end else begin
            wait_cnt <= LEVELS - 1;
            state <= S_SCAN;
          end
        end
        S_DRAIN:
        if (all_idle) begin
          cycles <= cyc;
          state <= S_HOLD_ACC;
        end
        S_HOLD_ACC:
        if (go) begin
          wb_row <= 0;
          state <= S_WB;
        end
        S_WB: begin
          wb_row <= wb_row + 1'b1;
          if (wb_row == ACC_ROWS - 1) state <= S_HOLD_OUT;
        end
        S_HOLD_OUT: if (go && model_last) state <= S_DONE;
        default: ;
      endcase
    end
  end
endmodule
`default_nettype wire
