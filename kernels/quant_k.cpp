// Scalar reference entries of the K-quant family (Q2_K .. Q6_K weights, Q8_K activations).
#include "kernels/ops.h"
#include "kernels/quant_k.h"

namespace zen::kernels {

void fill_kquants_scalar(OpsTable& t) {
  entry(t, DType::Q2_K) = {kq::dequantize_q2_K, kq::quantize_q2_K, kq::vec_dot_q2_K, nullptr};
  entry(t, DType::Q3_K) = {kq::dequantize_q3_K, kq::quantize_q3_K, kq::vec_dot_q3_K, nullptr};
  entry(t, DType::Q4_K) = {kq::dequantize_q4_K, kq::quantize_q4_K, kq::vec_dot_q4_K, nullptr};
  entry(t, DType::Q5_K) = {kq::dequantize_q5_K, kq::quantize_q5_K, kq::vec_dot_q5_K, nullptr};
  entry(t, DType::Q6_K) = {kq::dequantize_q6_K, kq::quantize_q6_K, kq::vec_dot_q6_K, nullptr};
  entry(t, DType::Q8_K) = {kq::dequantize_q8_K, kq::quantize_q8_K, nullptr, nullptr};
}

}  // namespace zen::kernels
