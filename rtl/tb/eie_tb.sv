// Testbench of the EIE reference design. It loads a packed model's images exactly as
// `pack`/`compress` wrote them (`*.hex` through $readmemh, every file's word count and
// width checked first) and the `vectors` of the functional model, runs every layer,
// compares every PE's accumulators and every output with the expected words, and prints
// each layer's cycle count, then PASS, or FAIL naming the first mismatch (exit status 1).
//
// The model-specific part comes from two files `eie-compress rtl-check` writes from the
// manifests: tb_params.vh (the design's parameters) and tb_model.vh (which files to load
// where, the expected vectors, the layer names). docs/rtl.md describes both.
`timescale 1ns / 1ps
module eie_tb;
`include "tb_params.vh"
  localparam integer NC = 1 << CODE_BITS;
  localparam integer KA = (N_PE > 1) ? $clog2(N_PE) : 1;
  localparam integer AA = $clog2(ACT_DEPTH + 1);
  localparam integer RA = $clog2(ACC_ROWS + 1);
  localparam integer DA = $clog2(N_PARTS + 1);

  reg clk = 1'b0;
  always #5 clk = ~clk;
  reg rst = 1'b1, start = 1'b0, go = 1'b0;
  reg ld_we = 1'b0;
  // +host_load: every memory is loaded through the design's host write port, one word a
  // cycle, as a chip is loaded (slow); by default the testbench writes them directly.
  reg host_mode;
  initial host_mode = $test$plusargs("host_load");
  reg host_we = 1'b0;
  reg [KA-1:0] host_pe = 0;
  reg [2:0] host_mem = 0;
  reg [31:0] host_addr = 0;
  reg [63:0] host_data = 0;
  reg [KA-1:0] ld_pe = 0, dbg_pe = 0;
  reg [AA-1:0] ld_addr = 0, dbg_addr = 0;
  reg [15:0] ld_data = 0;
  reg [RA-1:0] dbg_row = 0;
  wire hold, done;
  wire [1:0] phase;
  wire [31:0] cycles;
  wire [ACC_BITS-1:0] dbg_acc;
  wire [15:0] dbg_act;

  eie_top #(
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
      .MAX_PARTS(N_PARTS),
      .MAX_LAYERS(N_LAYERS),
      .COL_BITS(COL_BITS),
      .ROW_BITS(ROW_BITS)
  ) dut (
      .clk(clk),
      .rst(rst),
      .start(start),
      .n_parts(N_PARTS[DA-1:0]),
      .go(go),
      .hold(hold),
      .phase(phase),
      .done(done),
      .cycles(cycles),
      .host_we(host_we),
      .host_pe(host_pe),
      .host_mem(host_mem),
      .host_addr(host_addr),
      .host_data(host_data),
      .ld_we(ld_we),
      .ld_pe(ld_pe),
      .ld_addr(ld_addr),
      .ld_data(ld_data),
      .dbg_pe(dbg_pe),
      .dbg_row(dbg_row),
      .dbg_acc(dbg_acc),
      .dbg_addr(dbg_addr),
      .dbg_act(dbg_act)
  );

  integer j, r, mismatches;
  reg [PTR_BITS-1:0] ptr_tmp[0:MAX_FILE_WORDS-1];
  reg [63:0] vec_tmp[0:MAX_FILE_WORDS-1];
  reg [255:0] desc_tmp[0:N_PARTS-1];

  // One word through the host write port (docs/rtl.md "Memory map").
  task automatic host_write(input integer mem, input integer k, input integer addr,
                            input [63:0] data);
    begin
      @(negedge clk);
      host_we   = 1'b1;
      host_mem  = mem;
      host_pe   = k;
      host_addr = addr;
      host_data = data;
      @(negedge clk);
      host_we = 1'b0;
    end
  endtask

  // A $readmemh file as the manifest describes it: it opens, holds exactly `words` lines of
  // exactly `digits` lowercase hex digits each.
  task automatic check_hex(input string path, input integer words, input integer digits);
    integer fd, n, got, c, i;
    reg [8*80-1:0] line;
    begin
      fd = $fopen(path, "r");
      if (fd == 0) $fatal(1, "FAIL: cannot open %0s", path);
      n = 0;
      while (!$feof(fd)) begin
        line = 0;
        got  = $fgets(line, fd);
        // nothing read and not at the end: not a readable text file (a folder, a device)
        if (got == 0 && !$feof(fd)) $fatal(1, "FAIL: cannot read %0s", path);
        if (got > 0) begin
          n = n + 1;
          if (got != digits + 1 || line[7:0] != 8'h0a)
            $fatal(1, "FAIL: %0s line %0d: expected %0d hex digits (%0d-bit words)", path, n,
                   digits, digits * 4);
          for (i = 1; i <= digits; i = i + 1) begin
            c = line[8*i+:8];
            if (!((c >= "0" && c <= "9") || (c >= "a" && c <= "f")))
              $fatal(1, "FAIL: %0s line %0d: not a lowercase hex digit", path, n);
          end
        end
      end
      $fclose(fd);
      if (n != words)
        $fatal(1, "FAIL: %0s holds %0d words, the manifest says %0d", path, n, words);
    end
  endtask

`define EIE_PE(K) dut.g_pe[K].u_pe
  // Spmat image of PE K at word BASE.
`define LOAD_SPMAT(K, F, BASE, WORDS) \
  begin \
    check_hex(F, WORDS, 16); \
    if (WORDS > 0 && host_mode) begin \
      $readmemh(F, vec_tmp, 0, WORDS - 1); \
      for (j = 0; j < WORDS; j = j + 1) host_write(0, K, BASE + j, vec_tmp[j]); \
    end else if (WORDS > 0) $readmemh(F, `EIE_PE(K).spmat, BASE, BASE + WORDS - 1); \
  end
  // Pointer image of PE K at pointer BASE, split into the two banks by the address's low bit.
`define LOAD_PTR(K, F, BASE, WORDS) \
  begin \
    check_hex(F, WORDS, PTR_BITS / 4); \
    $readmemh(F, ptr_tmp, 0, WORDS - 1); \
    for (j = 0; j < WORDS; j = j + 1) \
      if (host_mode) host_write(1 + (BASE + j) % 2, K, (BASE + j) / 2, ptr_tmp[j]); \
      else if ((BASE + j) % 2 == 0) `EIE_PE(K).ptr_b0[(BASE + j) / 2] = ptr_tmp[j]; \
      else `EIE_PE(K).ptr_b1[(BASE + j) / 2] = ptr_tmp[j]; \
  end
  // A layer's codebook into slot L.
`define LOAD_CODEBOOK(L, F) \
  begin \
    check_hex(F, NC, 4); \
    $readmemh(F, vec_tmp, 0, NC - 1); \
    for (j = 0; j < NC; j = j + 1) \
      if (host_mode) host_write(4, 0, (L) * NC + j, vec_tmp[j]); \
      else dut.cb_mem[(L) * NC + j] = vec_tmp[j][15:0]; \
  end
  // The descriptors, one 256-bit line per part.
`define LOAD_DESCRIPTORS(F) \
  begin \
    check_hex(F, N_PARTS, 64); \
    $readmemh(F, desc_tmp, 0, N_PARTS - 1); \
    for (j = 0; j < N_PARTS * 4; j = j + 1) \
      if (host_mode) host_write(3, 0, j, desc_tmp[j/4][(j%4)*64+:64]); \
      else dut.desc[j/4][(j%4)*64+:64] = desc_tmp[j/4][(j%4)*64+:64]; \
  end

  task automatic fail(input string what);
    begin
      if (mismatches < 5) $display("FAIL: %0s", what);
      mismatches = mismatches + 1;
    end
  endtask

  // The expected accumulators of PE k (local rows 0..words-1), ACC_WORD_BITS-bit words.
  task automatic check_acc(input integer l, input string name, input integer k, input string f,
                           input integer words);
    reg signed [63:0] want, got;
    begin
      check_hex(f, words, ACC_WORD_BITS / 4);
      if (words > 0) $readmemh(f, vec_tmp, 0, words - 1);
      for (r = 0; r < words; r = r + 1) begin
        dbg_pe  = k;
        dbg_row = r;
        #1;
        want = vec_tmp[r] << (64 - ACC_WORD_BITS);
        want = want >>> (64 - ACC_WORD_BITS);
        got  = {{(64 - ACC_BITS) {dbg_acc[ACC_BITS-1]}}, dbg_acc};
        if (got !== want)
          fail($sformatf("layer %0d (%0s) PE %0d row %0d (output %0d): accumulator %0d, expected %0d",
                         l, name, k, r, r * N_PE + k, got, want));
      end
    end
  endtask

  // The expected outputs (rows words): output i is in PE i mod N at local row i div N.
  task automatic check_out(input integer l, input string name, input string f,
                           input integer rows);
    begin
      check_hex(f, rows, 4);
      $readmemh(f, vec_tmp, 0, rows - 1);
      for (r = 0; r < rows; r = r + 1) begin
        dbg_pe   = r % N_PE;
        dbg_addr = r / N_PE;
        #1;
        if (dbg_act !== vec_tmp[r][15:0])
          fail($sformatf("layer %0d (%0s) PE %0d row %0d (output %0d): output %0d, expected %0d",
                         l, name, r % N_PE, r / N_PE, r, $signed(dbg_act),
                         $signed(vec_tmp[r][15:0])));
      end
    end
  endtask

  // A layer's input activations into the source register files, through the load port.
  task automatic load_input(input string f, input integer inputs);
    begin
      check_hex(f, inputs, 4);
      if (inputs > 0) $readmemh(f, vec_tmp, 0, inputs - 1);
      for (j = 0; j < inputs; j = j + 1) begin
        @(negedge clk);
        ld_we   = 1'b1;
        ld_pe   = j % N_PE;
        ld_addr = j / N_PE;
        ld_data = vec_tmp[j][15:0];
      end
      @(negedge clk);
      ld_we = 1'b0;
    end
  endtask

  task automatic pulse_go;
    begin
      @(negedge clk);
      go = 1'b1;
      @(negedge clk);
      go = 1'b0;
    end
  endtask

  task automatic wait_hold(input integer p, input integer l);
    integer waited;
    begin
      waited = 0;
      while (!(hold && phase == p)) begin
        @(posedge clk);
        #1;
        waited = waited + 1;
        if (waited > MAX_CYCLES) $fatal(1, "FAIL: layer %0d did not finish in %0d cycles", l, waited);
      end
    end
  endtask

`include "tb_model.vh"

  integer l;
  string name;
  initial begin
    mismatches = 0;
    // The host port writes only out of reset; direct loading needs no clock.
    if (!host_mode) load_model();
    repeat (2) @(negedge clk);
    rst = 1'b0;
    if (host_mode) load_model();
    load_layer_input(0);
    @(negedge clk);
    start = 1'b1;
    @(negedge clk);
    start = 1'b0;
    for (l = 0; l < N_LAYERS; l = l + 1) begin
      layer_name(l, name);
      wait_hold(1, l);
      $display("EIE-RTL layer %0d cycles %0d %0s", l, cycles, name);
      check_layer_acc(l);
      pulse_go();
      wait_hold(2, l);
      check_layer_out(l);
      if (mismatches > 0)
        $fatal(1, "FAIL: %0d mismatches in layer %0d (%0s)", mismatches, l, name);
      if (INDEPENDENT && l + 1 < N_LAYERS) load_layer_input(l + 1);
      pulse_go();
    end
    @(posedge clk);
    #1;
    if (!done) $fatal(1, "FAIL: the design did not stop after the last layer");
    $display("EIE-RTL PASS");
    $finish;
  end
endmodule
