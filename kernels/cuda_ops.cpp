// LibTorch glue of the CUDA kernels: checks, dtype/layout preparation, the current stream, and the autograd
// Function of chunk_attention_train. Compiled to nothing without LCTX_WITH_CUDA.
#include "kernels/cuda_ops.hpp"

#ifdef LCTX_HAVE_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>
#include <limits>

#include "kernels/cuda/launch.hpp"

namespace lctx::kernels::cuda {
namespace {

using cuda_impl::DType;

bool kernel_dtype(torch::ScalarType t) {
  return t == torch::kFloat || t == torch::kBFloat16 || t == torch::kHalf;
}
DType to_dtype(torch::ScalarType t) {
  return t == torch::kFloat ? DType::f32 : t == torch::kBFloat16 ? DType::bf16 : DType::f16;
}
cudaStream_t stream() { return at::cuda::getCurrentCUDAStream().stream(); }
bool all_cuda(std::initializer_list<torch::Tensor> ts) {
  for (auto& t : ts)
    if (t.defined() && !t.is_cuda()) return false;
  return true;
}

// Shared-memory bytes of the chunk kernels (kernels/cuda/chunk_attention.cu): forward 2 tiles + queries,
// backward 4 tiles + queries + output gradients (16 warps).
size_t chunk_smem(int64_t s, int64_t d, int64_t g, bool backward) {
  const int64_t w = std::min<int64_t>(g, 16);
  const int64_t ld = d % 8 == 0 ? d + 4 : d % 4 == 0 ? d + 8 : d + 1;  // kernels/cuda/common.cuh tile_ld
  return size_t(backward ? 2 * s * ld + 2 * 16 * (d + s) : 2 * s * ld + w * d) * sizeof(float);
}
size_t smem_optin() {
  static const size_t v = [] {
    int dev = 0, bytes = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    return size_t(bytes);
  }();
  return v;
}

cuda_impl::ChunkShape chunk_shape(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& k) {
  cuda_impl::ChunkShape s{};
  s.B = q.size(0), s.H = q.size(1), s.T = q.size(2), s.D = q.size(3);
  s.N = k.size(1), s.Hkv = k.size(2), s.S = k.size(3), s.K = idx.size(2);
  return s;
}

// q [B, H, T, D], idx [B, T, K], w [B, T, K], k/v [B, N, Hkv, S, D]: checked here (the same rules as the
// reference).
void check_train_shapes(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& w,
                        const torch::Tensor& k, const torch::Tensor& v) {
  TORCH_CHECK(q.dim() == 4, "chunk_attention_train: q must be [B, H, T, D]");
  TORCH_CHECK(k.dim() == 5 && v.sizes() == k.sizes(), "chunk_attention_train: k and v must be [B, N, Hkv, S, D]");
  TORCH_CHECK(k.size(0) == q.size(0) && k.size(4) == q.size(3) && k.size(2) > 0 && q.size(1) % k.size(2) == 0,
              "chunk_attention_train: k/v batch, kv heads (must divide H) or head size disagree with q");
  TORCH_CHECK(idx.dim() == 3 && idx.size(0) == q.size(0) && idx.size(1) == q.size(2) && w.sizes() == idx.sizes(),
              "chunk_attention_train: idx and w must be [B, T, K]");
}

class ChunkAttnFn : public torch::autograd::Function<ChunkAttnFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q,
                               const torch::Tensor& idx, const torch::Tensor& w, const torch::Tensor& k,
                               const torch::Tensor& v, double scale, bool joint) {
    const c10::cuda::CUDAGuard guard(q.device());
    auto qc = q.contiguous();
    auto kc = k.to(q.scalar_type()).contiguous(), vc = v.to(q.scalar_type()).contiguous();
    auto ic = idx.to(q.device(), torch::kInt64).contiguous();
    auto wf = w.to(q.device(), torch::kFloat).contiguous();
    const auto sh = chunk_shape(qc, ic, kc);
    auto f32 = qc.options().dtype(torch::kFloat);
    auto out = torch::empty(qc.sizes(), f32);
    auto lse = torch::empty({joint ? sh.B * sh.H * sh.T : 0}, f32);
    cuda_impl::chunk_attention_fwd(to_dtype(qc.scalar_type()), to_dtype(qc.scalar_type()), qc.data_ptr(), ic.data_ptr<int64_t>(),
                                   wf.data_ptr<float>(), kc.data_ptr(), vc.data_ptr(), out.data_ptr(), true,
                                   joint ? lse.data_ptr<float>() : nullptr, sh, float(scale), joint, stream());
    ctx->save_for_backward({qc, ic, wf, kc, vc, joint ? out : torch::Tensor(), lse});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["joint"] = joint;
    ctx->saved_data["w_dtype"] = int64_t(w.scalar_type());
    ctx->saved_data["k_dtype"] = int64_t(k.scalar_type());
    ctx->saved_data["v_dtype"] = int64_t(v.scalar_type());
    return out.to(q.scalar_type());
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    auto qc = saved[0], ic = saved[1], wf = saved[2], kc = saved[3], vc = saved[4], out = saved[5], lse = saved[6];
    const double scale = ctx->saved_data["scale"].toDouble();
    const bool joint = ctx->saved_data["joint"].toBool();
    const c10::cuda::CUDAGuard guard(qc.device());
    auto f32 = qc.options().dtype(torch::kFloat);
    auto dout = grads[0].defined() ? grads[0].to(torch::kFloat).contiguous() : torch::zeros(qc.sizes(), f32);
    auto dq = torch::empty_like(qc);
    auto dk = torch::zeros(kc.sizes(), f32), dv = torch::zeros(vc.sizes(), f32);
    auto dw = torch::zeros(wf.sizes(), f32);
    const auto sh = chunk_shape(qc, ic, kc);
    cuda_impl::chunk_attention_bwd(to_dtype(qc.scalar_type()), qc.data_ptr(), ic.data_ptr<int64_t>(),
                                   wf.data_ptr<float>(), kc.data_ptr(), vc.data_ptr(),
                                   joint ? out.data_ptr<float>() : nullptr, joint ? lse.data_ptr<float>() : nullptr,
                                   dout.data_ptr<float>(), dq.data_ptr(), dk.data_ptr<float>(), dv.data_ptr<float>(),
                                   dw.data_ptr<float>(), sh, float(scale), joint, stream());
    auto st = [&](const char* key) { return torch::ScalarType(ctx->saved_data[key].toInt()); };
    return {dq, torch::Tensor(), dw.to(st("w_dtype")), dk.to(st("k_dtype")), dv.to(st("v_dtype")), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

bool needs_grad(std::initializer_list<torch::Tensor> ts) {
  if (!torch::GradMode::is_enabled()) return false;
  for (auto& t : ts)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

// ---- window attention ----------------------------------------------------------------------------------

bool window_attention_supported(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  return all_cuda({q, k, v}) && kernel_dtype(q.scalar_type()) && q.dim() == 4 && k.dim() == 4 && v.dim() == 4 &&
         k.size(1) == q.size(1) && v.size(1) == q.size(1) && k.size(0) == q.size(0) && v.size(0) == q.size(0) &&
         v.size(3) == q.size(3) && q.size(3) >= 1 && q.size(3) <= 256 && q.size(0) * q.size(1) <= 65535;
}

torch::Tensor window_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window,
                               int64_t q_pos0, int64_t k_pos0, double scale) {
  const c10::cuda::CUDAGuard guard(q.device());
  auto qc = q.contiguous();
  auto kc = k.to(q.scalar_type()).contiguous(), vc = v.to(q.scalar_type()).contiguous();
  auto out = torch::empty(qc.sizes(), qc.options());
  cuda_impl::window_attention_fwd(to_dtype(qc.scalar_type()), qc.data_ptr(), kc.data_ptr(), vc.data_ptr(),
                                  out.data_ptr(), qc.size(0), qc.size(1), qc.size(2), kc.size(2), qc.size(3), window,
                                  q_pos0, k_pos0, float(scale), stream());
  return out;
}

// ---- chunk attention -----------------------------------------------------------------------------------

bool chunk_attention_supported(const torch::Tensor& q, const torch::Tensor& k) {
  if (!all_cuda({q, k}) || !kernel_dtype(k.scalar_type()) || !kernel_dtype(q.scalar_type())) return false;
  if (!((q.dim() == 3 && k.dim() == 4) || (q.dim() == 4 && k.dim() == 5))) return false;
  const int64_t h = q.size(-3), d = q.size(-1), hkv = k.size(-3), s = k.size(-2);
  if (d < 1 || d > 256 || s < 1 || s > 128 || hkv < 1 || h % hkv != 0 || k.size(-1) != d) return false;
  const bool train = q.dim() == 4;
  return chunk_smem(s, d, h / hkv, train) <= smem_optin();
}

torch::Tensor chunk_attention(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& w,
                              const torch::Tensor& k, const torch::Tensor& v, double scale, bool joint) {
  const char* what = joint ? "chunk_attention_joint" : "chunk_attention";
  TORCH_CHECK(q.dim() == 3, what, ": q must be [H, Tq, D]");
  TORCH_CHECK(k.dim() == 4 && v.sizes() == k.sizes(), what, ": k and v must be [N, Hkv, S, D]");
  TORCH_CHECK(k.size(1) > 0 && q.size(0) % k.size(1) == 0 && k.size(3) == q.size(2),
              what, ": k/v heads must divide q's heads and the head sizes must agree");
  TORCH_CHECK(idx.dim() == 2 && idx.size(0) == q.size(1) && w.sizes() == idx.sizes(),
              what, ": idx and weights/bias must be [Tq, K]");
  const c10::cuda::CUDAGuard guard(q.device());
  const auto kt = k.scalar_type();
  // Queries stay float32 over lower-precision chunk memory; otherwise they take the storage dtype.
  const auto qt = (q.scalar_type() == torch::kFloat) ? torch::kFloat : kt;
  auto qc = q.to(qt).unsqueeze(0).contiguous();  // [1, H, Tq, D]
  auto kc = k.unsqueeze(0).contiguous(), vc = v.to(kt).unsqueeze(0).contiguous();
  auto ic = idx.to(q.device(), torch::kInt64).unsqueeze(0).contiguous();
  auto wf = w.to(q.device(), torch::kFloat).unsqueeze(0).contiguous();
  const auto sh = chunk_shape(qc, ic, kc);
  auto out = torch::empty(qc.sizes(), qc.options());
  cuda_impl::chunk_attention_fwd(to_dtype(qt), to_dtype(kt), qc.data_ptr(), ic.data_ptr<int64_t>(),
                                 wf.data_ptr<float>(), kc.data_ptr(), vc.data_ptr(), out.data_ptr(),
                                 qt == torch::kFloat, nullptr, sh, float(scale), joint, stream());
  return out.squeeze(0).to(q.scalar_type());
}

torch::Tensor chunk_attention_train(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& w,
                                    const torch::Tensor& k, const torch::Tensor& v, double scale, bool joint) {
  check_train_shapes(q, idx, w, k, v);
  return ChunkAttnFn::apply(q, idx, w, k, v, scale, joint);
}

// ---- selection -----------------------------------------------------------------------------------------

bool select_chunks_supported(const torch::Tensor& q, const torch::Tensor& landmarks, int64_t k) {
  return all_cuda({q, landmarks}) && kernel_dtype(landmarks.scalar_type()) && kernel_dtype(q.scalar_type()) &&
         q.dim() == 2 && landmarks.dim() == 2 && q.size(1) == landmarks.size(1) && q.size(1) >= 1 &&
         q.size(1) <= 256 && k >= 1 && k <= 64 && landmarks.size(0) < (int64_t(1) << 31) - 1024;
}

ChunkSelection select_chunks(const torch::Tensor& q, const torch::Tensor& landmarks, const torch::Tensor& visible,
                             int64_t k, double scale) {
  TORCH_CHECK(q.dim() == 2 && landmarks.dim() == 2 && q.size(1) == landmarks.size(1),
              "select_chunks: q [Tq, d] and landmarks [N, d] must agree");
  TORCH_CHECK(visible.dim() == 1 && visible.size(0) == q.size(0), "select_chunks: visible must be [Tq]");
  const c10::cuda::CUDAGuard guard(q.device());
  const int64_t tq = q.size(0), n = landmarks.size(0), kk = std::max<int64_t>(0, std::min(k, n));
  auto lc = landmarks.contiguous();
  auto qc = q.to(lc.scalar_type()).contiguous();
  auto vis = visible.to(q.device(), torch::kInt64).contiguous();
  ChunkSelection sel;
  sel.idx = torch::empty({tq, kk}, q.options().dtype(torch::kInt64));
  auto sc = torch::empty({tq, kk}, q.options().dtype(torch::kFloat));
  if (kk > 0 && tq > 0)
    cuda_impl::select_topk(to_dtype(lc.scalar_type()), qc.data_ptr(), lc.data_ptr(), vis.data_ptr<int64_t>(), tq, n,
                           q.size(1), k, float(scale), sel.idx.data_ptr<int64_t>(), sc.data_ptr<float>(),
                           at::cuda::getCurrentDeviceProperties()->multiProcessorCount, stream());
  sel.scores = sc.to(q.scalar_type());
  return sel;
}

// ---- selective scan ------------------------------------------------------------------------------------

bool selective_scan_supported(const torch::Tensor& x, const torch::Tensor& A) {
  return all_cuda({x, A}) && kernel_dtype(x.scalar_type()) && A.dim() == 2 && A.size(1) >= 1 && A.size(1) <= 64;
}

torch::Tensor selective_scan(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                             const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& D,
                             const torch::Tensor& h0, torch::Tensor* h_last) {
  const c10::cuda::CUDAGuard guard(x.device());
  const auto xt = x.scalar_type();
  auto xc = x.contiguous(), dtc = dt.to(xt).contiguous(), bc = Bm.to(xt).contiguous(), cc = C.to(xt).contiguous();
  auto f = [&](const torch::Tensor& t) { return t.defined() ? t.to(x.device(), torch::kFloat).contiguous() : t; };
  auto af = f(A), df = f(D), hf = f(h0);
  const int64_t b = x.size(0), t = x.size(1), di = x.size(2), n = A.size(1);
  auto y = torch::empty({b, t, di}, xc.options());
  torch::Tensor hl;
  if (h_last) hl = torch::empty({b, di, n}, xc.options().dtype(torch::kFloat));
  cuda_impl::selective_scan_fwd(to_dtype(xt), xc.data_ptr(), dtc.data_ptr(), af.data_ptr<float>(), bc.data_ptr(),
                                cc.data_ptr(), df.defined() ? df.data_ptr<float>() : nullptr,
                                hf.defined() ? hf.data_ptr<float>() : nullptr, y.data_ptr(),
                                h_last ? hl.data_ptr<float>() : nullptr, b, t, di, n, stream());
  if (h_last) *h_last = hl;
  return y;
}

void selective_scan_train_fwd(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                              const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& D,
                              const torch::Tensor& h0, int64_t chunk, torch::Tensor& y, torch::Tensor& h_last,
                              torch::Tensor& H) {
  TORCH_CHECK(chunk == cuda_impl::selective_scan_train_chunk(A.size(1)), "selective_scan_train: chunk length");
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t b = x.size(0), t = x.size(1), di = x.size(2), n = A.size(1), nch = (t + chunk - 1) / chunk;
  auto f32 = x.options().dtype(torch::kFloat);
  y = torch::empty({b, t, di}, x.options());
  h_last = torch::empty({b, di, n}, f32);
  H = torch::empty({b, nch, di, n}, f32);
  cuda_impl::selective_scan_fwd(to_dtype(x.scalar_type()), x.data_ptr(), dt.data_ptr(), A.data_ptr<float>(),
                                Bm.data_ptr(), C.data_ptr(), D.defined() ? D.data_ptr<float>() : nullptr,
                                h0.defined() ? h0.data_ptr<float>() : nullptr, y.data_ptr(), h_last.data_ptr<float>(),
                                b, t, di, n, stream(), chunk, H.data_ptr<float>());
}

std::vector<torch::Tensor> selective_scan_train_bwd(const torch::Tensor& x, const torch::Tensor& dt,
                                                    const torch::Tensor& A, const torch::Tensor& Bm,
                                                    const torch::Tensor& C, const torch::Tensor& H,
                                                    const torch::Tensor& dy, const torch::Tensor& dh_last) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t b = x.size(0), t = x.size(1), di = x.size(2), n = A.size(1), nch = H.size(1);
  auto f32 = x.options().dtype(torch::kFloat);
  auto dx = torch::empty({b, t, di}, f32), ddt = torch::empty({b, t, di}, f32);
  auto dA_part = torch::empty({b, nch, di, n}, f32);
  auto dBC_part = torch::empty({cuda_impl::selective_scan_bwd_groups(di, n), b, t, 2, n}, f32);
  auto dh0 = torch::empty({b, di, n}, f32);
  cuda_impl::selective_scan_bwd(to_dtype(x.scalar_type()), x.data_ptr(), dt.data_ptr(), A.data_ptr<float>(),
                                Bm.data_ptr(), C.data_ptr(), H.data_ptr<float>(), dy.data_ptr<float>(),
                                dh_last.defined() ? dh_last.data_ptr<float>() : nullptr, dx.data_ptr<float>(),
                                ddt.data_ptr<float>(), dA_part.data_ptr<float>(), dBC_part.data_ptr<float>(),
                                dh0.data_ptr<float>(), b, t, di, n, stream());
  auto dBC = dBC_part.sum(0);  // [B, T, 2, N]
  return {dx, ddt, dA_part.sum(torch::IntArrayRef{0, 1}), dBC.select(2, 1), dBC.select(2, 0), dh0};
}

}  // namespace lctx::kernels::cuda
#endif
