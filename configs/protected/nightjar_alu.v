// NIGHTJAR arithmetic unit: a made-up design standing in for an enterprise's
// protected RTL in the policy example. Excerpts of this file are caught by the
// fingerprint rule even when reformatted or renamed.
module nightjar_alu #(
    parameter WIDTH = 32
) (
    input  wire             clk,
    input  wire             rst_n,
    input  wire [3:0]       op,
    input  wire [WIDTH-1:0] a,
    input  wire [WIDTH-1:0] b,
    output reg  [WIDTH-1:0] y,
    output reg              carry,
    output reg              zero
);
    wire [WIDTH:0] sum  = {1'b0, a} + {1'b0, b};
    wire [WIDTH:0] diff = {1'b0, a} - {1'b0, b};

    always @(posedge clk or negedge rst_n) begin
        if (!rst_n) begin
            y     <= {WIDTH{1'b0}};
            carry <= 1'b0;
            zero  <= 1'b0;
        end else begin
            case (op)
                4'h0: {carry, y} <= sum;
                4'h1: {carry, y} <= diff;
                4'h2: begin y <= a & b; carry <= 1'b0; end
                4'h3: begin y <= a | b; carry <= 1'b0; end
                4'h4: begin y <= a ^ b; carry <= 1'b0; end
                4'h5: begin y <= a << b[4:0]; carry <= a[WIDTH-1]; end
                4'h6: begin y <= a >> b[4:0]; carry <= a[0]; end
                4'h7: begin y <= ($signed(a) < $signed(b)) ? 1 : 0; carry <= 1'b0; end
                default: begin y <= {WIDTH{1'b0}}; carry <= 1'b0; end
            endcase
            zero <= (y == {WIDTH{1'b0}});
        end
    end
endmodule
