// Leading-non-zero detection (LNZD): the lowest-indexed set bit of `in`, which is the next
// non-zero activation in column order. A quadtree of 4-input priority encoders,
// ceil(log4 N) levels deep (paper, Section IV). Combinational; the control charges the
// tree's fill once per layer and per column batch (docs/rtl.md).
`default_nettype none
module eie_lnzd #(
    parameter integer N  = 64,
    parameter integer L  = ($clog2(N) + 1) / 2,
    parameter integer IW = (L == 0) ? 1 : 2 * L
) (
    input  wire [N-1:0]  in,
    output wire          found,
    output wire [IW-1:0] index
);
  generate
    if (L == 0) begin : g_one
      assign found = in[0];
      assign index = 1'b0;
    end else if (L == 1) begin : g_leaf
      wire [3:0] v;
      genvar i;
      for (i = 0; i < 4; i = i + 1) begin : g_pad
        if (i < N) begin : g_bit
          assign v[i] = in[i];
        end else begin : g_zero
          assign v[i] = 1'b0;
        end
      end
      assign found = |v;
      assign index = v[0] ? 2'd0 : v[1] ? 2'd1 : v[2] ? 2'd2 : 2'd3;
    end else begin : g_node
      localparam integer Q = 4 ** (L - 1);  // inputs per subtree
      wire [4*Q-1:0] padded;
      assign padded[N-1:0] = in;
      if (4 * Q > N) begin : g_pad
        assign padded[4*Q-1:N] = {(4 * Q - N) {1'b0}};
      end
      wire [3:0] f;
      wire [2*L-3:0] sub[0:3];
      genvar i;
      for (i = 0; i < 4; i = i + 1) begin : g_sub
        eie_lnzd #(
            .N (Q),
            .L (L - 1),
            .IW(2 * L - 2)
        ) u_sub (
            .in   (padded[i*Q+:Q]),
            .found(f[i]),
            .index(sub[i])
        );
      end
      wire [1:0] sel = f[0] ? 2'd0 : f[1] ? 2'd1 : f[2] ? 2'd2 : 2'd3;
      assign found = |f;
      assign index = {sel, sub[sel]};
    end
  endgenerate
endmodule
`default_nettype wire
