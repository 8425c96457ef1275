`default_nettype none
// Leading-non-zero detection (LNZD): the lowest-indexed set bit of `in`, which is the next
// non-zero activation in column order. A quadtree of 4-input priority encoders,
// L = ceil(log4 N) levels deep (paper, Section IV): level 1 encodes groups of 4 inputs,
// each further level groups 4 nodes of the level below and prefixes their 2-bit choice.
// Combinational; the control charges the tree's fill once per layer and per column batch
// (docs/rtl.md).
module eie_lnzd #(
    parameter integer N  = 64,
    parameter integer L  = ($clog2(N) + 1) / 2,
    parameter integer IW = (L == 0) ? 1 : 2 * L
) (
    input  wire [N-1:0]  in,
    output wire          found,
    output wire [IW-1:0] index
);
  genvar l, i;
  generate
    if (L == 0) begin : g_one
      assign found = in[0];
      assign index = 1'b0;
    end else begin : g_tree
      localparam integer W = 4 ** L;  // inputs, padded with zeros
      wire [W-1:0] leaves;
      assign leaves[N-1:0] = in;
      if (W > N) begin : g_pad
        assign leaves[W-1:N] = {(W - N) {1'b0}};
      end
      for (l = 1; l <= L; l = l + 1) begin : g_lvl
        localparam integer NODES = W / (4 ** l);
        wire [NODES-1:0] v;  // the node's subtree holds a set bit
        wire [NODES*2*l-1:0] ix;  // its lowest set bit within the subtree, 2l bits
        for (i = 0; i < NODES; i = i + 1) begin : g_node
          wire [3:0] f;
          if (l == 1) begin : g_leaf
            assign f = leaves[4*i+:4];
          end else begin : g_inner
            assign f = g_lvl[l-1].v[4*i+:4];
          end
          wire [1:0] sel = f[0] ? 2'd0 : f[1] ? 2'd1 : f[2] ? 2'd2 : 2'd3;
          assign v[i] = |f;
          if (l == 1) begin : g_leaf_ix
            assign ix[2*i+:2] = sel;
          end else begin : g_inner_ix
            assign ix[2*l*i+:2*l] = {sel, g_lvl[l-1].ix[2*(l-1)*(4*i+sel)+:2*(l-1)]};
          end
        end
      end
      assign found = g_lvl[L].v[0];
      assign index = g_lvl[L].ix[2*L-1:0];
    end
  endgenerate
endmodule
`default_nettype wire
