# Wire messages between zen nodes. Generated at build time (capnp_generate_cpp),
# never committed. Every frame carries exactly one Envelope; the envelope's
# protocolVersion is checked before anything else is read.
@0xd87ab60dfd85ade9;

$import "/capnp/c++.capnp".namespace("zen::wire");

enum DType {
  f32 @0;
  f16 @1;
  bf16 @2;
}

# A typed tensor: row-major, shape[0] outermost. bytes = product(shape) * size(dtype).
struct TensorBuf {
  dtype @0 :DType;
  shape @1 :List(UInt32);
  bytes @2 :Data;
}

struct Hello {
  nodeName @0 :Text;
  staticKey @1 :Data;          # 32-byte X25519 public key
  ramBytes @2 :UInt64;
  threads @3 :UInt32;
  cpuFeatures @4 :Text;        # e.g. "avx2 fma f16c"
  kernelGbps @5 :Float64;      # measured matmul bandwidth, GB/s
  modelDigest @6 :Data;        # empty when the node has no model file
  listenAddress @7 :Text;      # "host:port" other nodes may dial, empty if none
}

struct Stage {
  nodeName @0 :Text;
  firstLayer @1 :UInt32;
  endLayer @2 :UInt32;         # exclusive
  address @3 :Text;            # "host:port" to dial this stage
  nodeKey @4 :Data;            # 32-byte static key to pin when dialling; empty: not pinned
}

struct Plan {
  planId @0 :UInt64;
  modelDigest @1 :Data;
  activationDtype @2 :DType;
  stages @3 :List(Stage);      # pipeline order
  predictedTokensPerS @4 :Float64;  # the planner's prediction this plan was chosen on
}

struct SamplingParams {
  temperature @0 :Float32;
  topK @1 :Int32;
  topP @2 :Float32;
  minP @3 :Float32;
  repeatPenalty @4 :Float32;
  repeatLastN @5 :Int32;
  seed @6 :UInt64;
}

struct StartRequest {
  requestId @0 :UInt64;
  seqIds @1 :List(UInt32);
  sampling @2 :SamplingParams;
  history @3 :List(Int32);     # tokens so far (prompt + tokens sampled), for the repetition penalty
  tokensSampled @4 :UInt32;    # tokens of the request sampled before (a resumed request): the RNG skips their draws
}

struct StageReady {
  planId @0 :UInt64;
  ok @1 :Bool;
  message @2 :Text;            # why not, when !ok
}

struct Forward {
  requestId @0 :UInt64;
  seqIds @1 :List(UInt32);     # [n_rows]
  positions @2 :List(Int32);   # [n_rows]
  tokens @3 :List(Int32);      # [n_rows] first stage only, else empty
  hidden @4 :TensorBuf;        # [n_rows, n_embd] for later stages
  wantLogits @5 :Bool;
  lastChunk @6 :Bool;          # this is the last chunk of the prompt
  draft @7 :List(Int32);       # speculative: drafted tokens = the last rows (checked by the last stage)
}

struct SampledTokens {
  requestId @0 :UInt64;
  seqIds @1 :List(UInt32);     # [n]
  tokens @2 :List(Int32);      # [n]
  hasLogits @3 :Bool;
  logits @4 :TensorBuf;        # [n, n_vocab] when hasLogits
}

struct ClearSequence {
  requestId @0 :UInt64;
  seqIds @1 :List(UInt32);
}

struct WeightRequest {
  sliceDigest @0 :Data;
  offset @1 :UInt64;           # resume point
}

struct WeightChunk {
  sliceDigest @0 :Data;
  offset @1 :UInt64;
  total @2 :UInt64;
  bytes @3 :Data;
}

struct Heartbeat {
  sentNs @0 :UInt64;
  busy @1 :Float32;            # 0..1 compute utilisation since the last heartbeat
  kvBytes @2 :UInt64;          # KV cache memory held by the sender's stage
  busySeconds @3 :Float64;     # the stage's compute time so far
  passes @4 :UInt64;           # the stage's batches so far
}

struct Ping {
  nonce @0 :UInt64;
  sentNs @1 :UInt64;
  padding @2 :Data;            # bandwidth probe: bytes that only take time to send (the Pong is small)
}

struct Pong {
  nonce @0 :UInt64;
  pingSentNs @1 :UInt64;
  sentNs @2 :UInt64;
}

struct Error {
  code @0 :UInt32;
  message @1 :Text;
}

struct Goodbye {
  reason @0 :Text;
}

struct Envelope {
  protocolVersion @0 :UInt16;
  body :union {
    hello @1 :Hello;
    plan @2 :Plan;
    startRequest @3 :StartRequest;
    forward @4 :Forward;
    sampledTokens @5 :SampledTokens;
    clearSequence @6 :ClearSequence;
    weightRequest @7 :WeightRequest;
    weightChunk @8 :WeightChunk;
    heartbeat @9 :Heartbeat;
    ping @10 :Ping;
    pong @11 :Pong;
    error @12 :Error;
    goodbye @13 :Goodbye;
    stageReady @14 :StageReady;
  }
}
