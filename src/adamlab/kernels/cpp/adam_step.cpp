// The fused Adam/AdamW step of adamlab.kernels.numba_adam, in C++, on PyTorch's intra-op
// thread pool (at::parallel_for). Built and loaded by adamlab.kernels.cpp_adam; called
// through ctypes (a plain C interface: addresses, sizes, scalars, flags).
//
// The element rule is adamlab.optim.Adam.update_leaf, operation for operation and in the
// same precision (float for float32/float16/bfloat16 storage, double for float64), with the
// step's scalars computed on the host (adamlab.kernels.adam_host.adam_scalars). Exactness
// needs the build flags cpp_adam.py passes: -ffp-contract=off (no fused multiply-add) and no
// -ffast-math; std::sqrt and division are then IEEE's correctly rounded operations. (Where
// two NaNs meet in one commutative operation, x86 returns the first operand's bits, and the
// compiler may order the operands either way: such NaNs may differ in sign and payload
// between builds. That is the one exception to "bit for bit".)
//
// One call steps n tensors of one storage kind. The work is the n tensors laid end to end,
// cut into blocks; at::parallel_for gives each thread one contiguous run of blocks, so
// threads get equal numbers of elements however the tensors are sized, in one parallel region.

#include <ATen/Parallel.h>
#include <ATen/core/TensorBase.h>
#include <c10/core/TensorImpl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ADAMLAB_HAVE_AVX2 1
#include <immintrin.h>
#else
#define ADAMLAB_HAVE_AVX2 0
#endif

// (F8 values cross no function boundary that is not inlined: GCC's note that passing them
// by value changes the psABI without AVX does not apply)
#pragma GCC diagnostic ignored "-Wpsabi"

namespace {

// flags and scalars layout: adamlab.kernels.adam_host
enum { F_MAXIMIZE = 0, F_WD = 1, F_AMSGRAD = 2, F_EPS = 3 };
enum { WD_NONE = 0, WD_L2 = 1, WD_DECOUPLED = 2 };
enum { AMS_OFF = 0, AMS_RAW = 1, AMS_CORRECTED = 2 };
enum { EPS_AFTER = 0, EPS_BEFORE = 1 };
enum { K_FLOAT32 = 0, K_FLOAT64 = 1, K_BFLOAT16 = 2, K_FLOAT16 = 3 };

// elements per block of the flattened work (the unit at::parallel_for hands out)
constexpr int64_t BLOCK = 4096;

// -- float16 / bfloat16 bits <-> float (as numba_adam.py does them) ------------------------

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float bf16_to_f32(uint16_t h) { return bits_f32(uint32_t(h) << 16); }

inline uint16_t f32_to_bf16(float f) {  // nearest, ties to even; NaN stays a quiet NaN
  const uint32_t x = f32_bits(f);
  const uint32_t rounded = (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
  const uint32_t nan = (x >> 16) | 0x40u;
  return uint16_t((x & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);  // (a select: vectorises)
}

inline float f16_to_f32(uint16_t h16) {
  uint32_t h = h16;
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1Fu;
  uint32_t f = h & 0x3FFu;
  if (e == 0) {  // zero or subnormal: f * 2^-24, exact in float
    float mag = float(f) * 5.960464477539063e-08f;
    return sign ? -mag : mag;
  }
  if (e == 31) return bits_f32(sign | 0x7F800000u | (f << 13));  // inf or NaN
  return bits_f32(sign | ((e + 112u) << 23) | (f << 13));
}

inline uint16_t f32_to_f16(float v) {
  uint32_t x = f32_bits(v);
  uint32_t sign = (x >> 16) & 0x8000u;
  x = x & 0x7FFFFFFFu;
  if (x >= 0x7F800000u) {  // inf or NaN
    uint32_t nan = x > 0x7F800000u ? 0x200u : 0u;
    return uint16_t(sign | 0x7C00u | nan);
  }
  if (x >= 0x477FF000u) return uint16_t(sign | 0x7C00u);  // >= 65520 rounds to inf
  if (x < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    if (x < 0x33000000u) return uint16_t(sign);
    uint32_t e = x >> 23;
    uint32_t m = (x & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - e;
    uint32_t hm = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (hm & 1u))) hm += 1u;
    return uint16_t(sign | hm);
  }
  uint32_t h = (x - 0x38000000u) >> 13;
  uint32_t rem = x & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h += 1u;
  return uint16_t(sign | h);
}

// storage <-> compute
template <int K> struct Kind;
template <> struct Kind<K_FLOAT32> {
  using S = float; using C = float;
  static C load(S s) { return s; }
  static S store(C c) { return c; }
};
template <> struct Kind<K_FLOAT64> {
  using S = double; using C = double;
  static C load(S s) { return s; }
  static S store(C c) { return c; }
};
template <> struct Kind<K_BFLOAT16> {
  using S = uint16_t; using C = float;
  static C load(S s) { return bf16_to_f32(s); }
  static S store(C c) { return f32_to_bf16(c); }
};
template <> struct Kind<K_FLOAT16> {
  using S = uint16_t; using C = float;
  static C load(S s) { return f16_to_f32(s); }
  static S store(C c) { return f32_to_f16(c); }
};

// torch.maximum / xp.maximum: NaN if either is NaN
template <typename C> inline C maximum(C a, C b) {
  if (a != a) return a;
  if (b != b) return b;
  return a >= b ? a : b;
}

template <typename C> struct Scalars {
  C b1, omb1, b2, omb2, c1, c2, lr, eps, wd, decay, alpha, eps_root;
};

// Eight float lanes as one value (GCC's vector extension): +, -, *, / and comparisons act
// lane by lane with IEEE's correctly rounded operations, as on a float, so element() below
// computes the same bits on F8 as on each float. Compiled as 8 AVX2 lanes in the AVX2 build,
// as two 4-lane halves in the baseline one.
typedef float F8 __attribute__((vector_size(32)));
typedef uint32_t U8 __attribute__((vector_size(32)));
typedef uint16_t H8 __attribute__((vector_size(16)));

// the scalar type of a lane
template <typename C> struct Lane { using T = C; };
template <> struct Lane<F8> { using T = float; };

inline float root(float a) { return std::sqrt(a); }
inline double root(double a) { return std::sqrt(a); }
__attribute__((always_inline)) inline F8 root(F8 a) {  // (the loop becomes one vsqrtps)
  F8 r;
  for (int i = 0; i < 8; ++i) r[i] = std::sqrt(a[i]);
  return r;
}

// One element of adamlab.optim.Adam.update_leaf, in its order: x, m, v (and v_max w, with
// AMSGrad) in, their new values out. AMS is a template parameter (it decides whether w is
// read and written at all); the other flags are loop invariants. Every quantity either branch
// of a flag needs is computed and the flag selects (no operation is reordered or fused: the
// selected value is bit for bit the reference's), so the loops that call it have no branches
// and vectorise.
template <typename C, int AMS>
__attribute__((always_inline)) inline void element(C& x, C g, C& m, C& v, C& w,
                                                   const Scalars<typename Lane<C>::T>& S,
                                                   bool neg, bool l2, bool dec, bool after) {
  if (neg) g = -g;
  if (dec) x = x * S.decay;
  if (l2) g = g + S.wd * x;
  m = S.b1 * m + S.omb1 * g;
  v = S.b2 * v + S.omb2 * g * g;
  C v_hat, v_used;
  if constexpr (AMS == AMS_CORRECTED) {
    w = maximum(w, v / S.c2);
    v_hat = w;
    v_used = w;
  } else if constexpr (AMS == AMS_RAW) {
    w = maximum(w, v);
    v_hat = w / S.c2;
    v_used = w;
  } else {
    v_hat = v / S.c2;
    v_used = v;
  }
  // after correction (Algorithm 1): x - lr * (m / c1) / (sqrt(v_hat + eps_root) + eps)
  // before correction (section 2):  x - alpha * m / (sqrt(v_used + eps_root) + eps)
  const C m_hat = m / S.c1;
  const C num = after ? S.lr * m_hat : S.alpha * m;
  const C den = root((after ? v_hat : v_used) + S.eps_root) + S.eps;
  x = x - num / den;
}

// One run of elements of one tensor.
template <int K, int AMS>
__attribute__((always_inline)) inline void run(
    typename Kind<K>::S* __restrict p, const typename Kind<K>::S* __restrict g_,
    typename Kind<K>::S* __restrict m_, typename Kind<K>::S* __restrict v_,
    typename Kind<K>::S* __restrict w_, int64_t n, const Scalars<typename Kind<K>::C>& S,
    bool neg, bool l2, bool dec, bool after) {
  using T = Kind<K>;
  using C = typename T::C;
  for (int64_t i = 0; i < n; ++i) {
    C x = T::load(p[i]);
    C m = T::load(m_[i]);
    C v = T::load(v_[i]);
    C w = AMS == AMS_OFF ? C(0) : T::load(w_[i]);
    element<C, AMS>(x, T::load(g_[i]), m, v, w, S, neg, l2, dec, after);
    if (AMS != AMS_OFF) w_[i] = T::store(w);
    p[i] = T::store(x);
    m_[i] = T::store(m);
    v_[i] = T::store(v);
  }
}

// One thread's share: elements lo .. hi of the tensors laid end to end.
template <int K, int AMS>
__attribute__((always_inline)) inline void range(
    const int64_t* ptrs, const int64_t* offsets, int64_t n, int64_t lo, int64_t hi,
    const Scalars<typename Kind<K>::C>& S, bool neg, bool l2, bool dec, bool after) {
  using St = typename Kind<K>::S;
  // the first tensor that ends after lo
  int64_t k = std::upper_bound(offsets, offsets + n + 1, lo) - offsets - 1;
  for (; k < n && offsets[k] < hi; ++k) {
    const int64_t a = std::max(lo, offsets[k]) - offsets[k];
    const int64_t b = std::min(hi, offsets[k + 1]) - offsets[k];
    if (b <= a) continue;
    St* q[5];
    for (int row = 0; row < 5; ++row) q[row] = reinterpret_cast<St*>(ptrs[row * n + k]) + a;
    run<K, AMS>(q[0], q[1], q[2], q[3], q[4], b - a, S, neg, l2, dec, after);
  }
}

// The same code compiled twice: for AVX2 (8 float lanes) and for the baseline (SSE2 on
// x86-64); dispatch picks by CPU (or by adamlab_set_isa, for tests).
#if ADAMLAB_HAVE_AVX2
template <int K, int AMS>
__attribute__((target("avx2"))) void range_avx2(
    const int64_t* ptrs, const int64_t* offsets, int64_t n, int64_t lo, int64_t hi,
    const Scalars<typename Kind<K>::C>& S, bool neg, bool l2, bool dec, bool after) {
  range<K, AMS>(ptrs, offsets, n, lo, hi, S, neg, l2, dec, after);
}
#endif

template <int K, int AMS>
void range_base(const int64_t* ptrs, const int64_t* offsets, int64_t n, int64_t lo, int64_t hi,
                const Scalars<typename Kind<K>::C>& S, bool neg, bool l2, bool dec, bool after) {
  range<K, AMS>(ptrs, offsets, n, lo, hi, S, neg, l2, dec, after);
}

// The memory floor's loop (for benchmarks): the bytes of a float32 step, no arithmetic. p is
// rewritten with its own value (p - 0·g, g finite), so that a training loop can run it and
// train nothing; m and v are scratch.
__attribute__((always_inline)) inline void floor_range(const int64_t* ptrs,
                                                       const int64_t* offsets, int64_t n,
                                                       int64_t lo, int64_t hi) {
  int64_t k = std::upper_bound(offsets, offsets + n + 1, lo) - offsets - 1;
  for (; k < n && offsets[k] < hi; ++k) {
    const int64_t a = std::max(lo, offsets[k]) - offsets[k];
    const int64_t b = std::min(hi, offsets[k + 1]) - offsets[k];
    float* __restrict p = reinterpret_cast<float*>(ptrs[k]) + a;
    const float* __restrict g = reinterpret_cast<const float*>(ptrs[n + k]) + a;
    float* __restrict m = reinterpret_cast<float*>(ptrs[2 * n + k]) + a;
    float* __restrict v = reinterpret_cast<float*>(ptrs[3 * n + k]) + a;
    for (int64_t i = 0; i < b - a; ++i) {
      const float gi = g[i];
      m[i] = m[i] + gi;
      v[i] = v[i] + 1e-3f;
      p[i] = p[i] - 0.0f * gi;
    }
  }
}

#if ADAMLAB_HAVE_AVX2
__attribute__((target("avx2"))) void floor_avx2(const int64_t* ptrs, const int64_t* offsets,
                                                int64_t n, int64_t lo, int64_t hi) {
  floor_range(ptrs, offsets, n, lo, hi);
}
#endif

void floor_base(const int64_t* ptrs, const int64_t* offsets, int64_t n, int64_t lo,
                int64_t hi) {
  floor_range(ptrs, offsets, n, lo, hi);
}

// -1: not chosen yet (by CPU at the first call); 0: baseline; 1: AVX2
int isa = -1;

bool use_avx2() {
#if ADAMLAB_HAVE_AVX2
  if (isa < 0) isa = __builtin_cpu_supports("avx2") ? 1 : 0;
  return isa == 1;
#else
  return false;
#endif
}

template <int K, int AMS>
void step(const int64_t* ptrs, const int64_t* offsets, int64_t n, const void* sc,
          const int64_t* fl, int64_t grain) {
  using C = typename Kind<K>::C;
  Scalars<C> S;
  std::memcpy(&S, sc, sizeof(S));
  const bool neg = fl[F_MAXIMIZE] != 0;
  const bool l2 = fl[F_WD] == WD_L2;
  const bool dec = fl[F_WD] == WD_DECOUPLED;
  const bool after = fl[F_EPS] == EPS_AFTER;
  const int64_t total = offsets[n];
  const int64_t blocks = (total + BLOCK - 1) / BLOCK;
  const int64_t grain_blocks = std::max<int64_t>(1, grain / BLOCK);
  auto fn = &range_base<K, AMS>;
#if ADAMLAB_HAVE_AVX2
  if (use_avx2()) fn = &range_avx2<K, AMS>;
#endif
  at::parallel_for(0, blocks, grain_blocks, [&](int64_t b0, int64_t b1) {
    fn(ptrs, offsets, n, b0 * BLOCK, std::min(b1 * BLOCK, total), S, neg, l2, dec, after);
  });
}

template <int K>
void dispatch(const int64_t* ptrs, const int64_t* offsets, int64_t n, const void* sc,
              const int64_t* fl, int64_t grain) {
  switch (fl[F_AMSGRAD]) {
    case AMS_OFF: return step<K, AMS_OFF>(ptrs, offsets, n, sc, fl, grain);
    case AMS_RAW: return step<K, AMS_RAW>(ptrs, offsets, n, sc, fl, grain);
    default: return step<K, AMS_CORRECTED>(ptrs, offsets, n, sc, fl, grain);
  }
}

// -- low-precision state: adamlab.kernels.numba_lowmem's float32 and bfloat16 modes ---------
//
// Parameters float32 or bfloat16; m and v float32 (MODE_FP32) or bfloat16 (MODE_BF16), per
// tensor; the element rule above in float32. The gradient is multiplied by the tensor's clip
// coefficient and then by the unscale factor, each product rounded to the gradient's dtype
// (factors of 1 when there are none: x * 1 is x, so the results equal numba's unscaled
// loop). bfloat16 results round to nearest even, or stochastically with the bits of
// adamlab.optim.quantized.rounding_bits (element i of a tensor under its key). 8-bit state:
// below, block by block.

enum { MODE_FP32 = 0, MODE_BF16 = 1, MODE_8BIT = 2 };
enum { R_P = 0, R_G = 1, R_M = 2, R_V = 3, R_AM = 4, R_AV = 5 };  // rows of the (6, n) address table

// (u + the top 16 bits of fmix32(k + (i + 1) * golden)) >> 16, in 32-bit arithmetic, k the
// key's low 32 bits: numba_lowmem._round_bits; NaN stays a quiet NaN.
inline uint16_t bf16_stochastic(float x, uint64_t key, int64_t i) {
  const uint32_t u = f32_bits(x);
  uint32_t z = uint32_t(key) + (uint32_t(i) + 1u) * 0x9E3779B9u;
  z = (z ^ (z >> 16)) * 0x85EBCA6Bu;
  z = (z ^ (z >> 13)) * 0xC2B2AE35u;
  z = z ^ (z >> 16);
  const uint16_t r = uint16_t((u + (z >> 16)) >> 16);
  return (u & 0x7FFFFFFFu) > 0x7F800000u ? uint16_t((u >> 16) | 0x40u) : r;
}

// bfloat16 <-> float32 eight lanes at a time in AVX2 instructions. Plain (not always_inline)
// functions with the AVX2 target: the compiler inlines them into the AVX2 build of the loops
// below, which alone calls them (Io<F8, true>).
#if ADAMLAB_HAVE_AVX2
__attribute__((target("avx2"))) inline F8 widen_avx2(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return (F8)_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
}
// the low 16 bits of each lane of a and of b to a[0..8) and b[0..8) (both below 2^16)
__attribute__((target("avx2"))) inline void narrow2_avx2(uint16_t* pa, U8 a, uint16_t* pb,
                                                         U8 b) {
  const __m256i ab = _mm256_permute4x64_epi64(_mm256_packus_epi32((__m256i)a, (__m256i)b), 0xD8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(pa), _mm256_castsi256_si128(ab));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(pb), _mm256_extracti128_si256(ab, 1));
}
// whether a lane of a or of b is NaN
__attribute__((target("avx2"))) inline bool either_nan_avx2(F8 a, F8 b) {
  return _mm256_movemask_ps(_mm256_cmp_ps((__m256)a, (__m256)b, _CMP_UNORD_Q)) != 0;
}
#endif

// Loads and stores of float32 and bfloat16 arrays in the compute type C, one float or eight
// (F8; lane i holds the scalar functions' result for element i: the same bits). AVX: the
// AVX2 build (its own widening and narrowing instructions); else the vector extension's.
// A bfloat16 result is first its bits B (in the low 16 bits of a uint32 lane), then stored.
template <typename C, bool AVX> struct Io;
template <bool AVX> struct Io<float, AVX> {
  using B = uint32_t;
  static float get(const float* p) { return *p; }
  static float get(const uint16_t* p) { return bf16_to_f32(*p); }
  static void put(float* p, float x) { *p = x; }
  static B nearest(float x) { return f32_to_bf16(x); }
  static void nearest2(float a, float b, B& ra, B& rb) {
    ra = f32_to_bf16(a);
    rb = f32_to_bf16(b);
  }
  static B stochastic(float x, uint64_t key, int64_t i) { return bf16_stochastic(x, key, i); }
  static void put_bits(uint16_t* p, B b) { *p = uint16_t(b); }
  static void put_bits2(uint16_t* pa, B a, uint16_t* pb, B b) {
    *pa = uint16_t(a);
    *pb = uint16_t(b);
  }
  static float to_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }  // (rounded)
};
template <bool AVX> struct Io<F8, AVX> {
  using B = U8;
  static F8 get(const float* p) {
    F8 r;
    std::memcpy(&r, p, sizeof r);
    return r;
  }
  static F8 get(const uint16_t* p) {
#if ADAMLAB_HAVE_AVX2
    if constexpr (AVX) return widen_avx2(p);
#endif
    H8 h;
    std::memcpy(&h, p, sizeof h);
    return (F8)(__builtin_convertvector(h, U8) << 16);
  }
  static void put(float* p, F8 x) { std::memcpy(p, &x, sizeof x); }
  static B nearest(F8 f) {  // f32_to_bf16
    const U8 x = (U8)f;
    return (f != f) ? ((x >> 16) | 0x40u) : rounded(x);
  }
  // f32_to_bf16 of lanes that are not NaN (a NaN lane's result is wrong: see nearest2)
  static U8 rounded(U8 x) { return (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16; }
  // nearest(a), nearest(b): the NaN lanes fixed only where a lane of either is NaN (one test
  // for both, a branch that is not taken on finite state)
  static void nearest2(F8 a, F8 b, B& ra, B& rb) {
#if ADAMLAB_HAVE_AVX2
    if constexpr (AVX) {
      ra = rounded((U8)a);
      rb = rounded((U8)b);
      if (__builtin_expect(either_nan_avx2(a, b), 0)) {
        ra = nearest(a);
        rb = nearest(b);
      }
      return;
    }
#endif
    ra = nearest(a);
    rb = nearest(b);
  }
  static B stochastic(F8 f, uint64_t key, int64_t i) {  // bf16_stochastic
    const U8 u = (U8)f;
    const U8 lane = {0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u};
    U8 z = uint32_t(key) + (uint32_t(i) + 1u + lane) * 0x9E3779B9u;
    z = (z ^ (z >> 16)) * 0x85EBCA6Bu;
    z = (z ^ (z >> 13)) * 0xC2B2AE35u;
    z = z ^ (z >> 16);
    return (f != f) ? ((u >> 16) | 0x40u) : (u + (z >> 16)) >> 16;
  }
  static void put_bits(uint16_t* p, B b) {
    const H8 h = __builtin_convertvector(b, H8);
    std::memcpy(p, &h, sizeof h);
  }
  static void put_bits2(uint16_t* pa, B a, uint16_t* pb, B b) {
#if ADAMLAB_HAVE_AVX2
    if constexpr (AVX) return narrow2_avx2(pa, a, pb, b);
#endif
    put_bits(pa, a);
    put_bits(pb, b);
  }
  static F8 to_bf16(F8 x) { return (F8)(nearest(x) << 16); }
};

// float32 or bfloat16 (its bits) storage
template <bool BF16> using Elem = typename std::conditional<BF16, uint16_t, float>::type;

// One tensor's run of a low-precision launch, besides its arrays: the step's scalars, the
// gradient's clip and unscale factors, the stochastic-rounding keys of p, m and v, and the
// index in its tensor of the run's element 0 (for the random bits).
struct Run {
  Scalars<float> S;
  float s0, s1;
  uint64_t kp, km, kv;
  int64_t i0;
};

// The step's flags (constants where a caller passes them so).
struct Flags {
  bool neg, l2, dec, after;
};

// One element (C = float) or eight (C = F8) of a low-precision launch: element j of the
// arrays.
template <typename C, bool AVX, bool PB, bool SB, bool SRP, bool SRS, bool SC = true>
__attribute__((always_inline)) inline void lowmem_at(Elem<PB>* __restrict p,
                                                     const Elem<PB>* __restrict g,
                                                     Elem<SB>* __restrict mm,
                                                     Elem<SB>* __restrict vv, int64_t j,
                                                     const Run& R, Flags F) {
  using IO = Io<C, AVX>;
  C x = IO::get(p + j), m = IO::get(mm + j), v = IO::get(vv + j), unused = {};
  C gr;  // the gradient times its factors, each product rounded to the gradient's dtype
  if constexpr (!SC) {  // factors of 1 (x·1 is x): none
    gr = IO::get(g + j);
  } else if constexpr (PB) {
    gr = IO::to_bf16(IO::to_bf16(IO::get(g + j) * R.s0) * R.s1);
  } else {
    gr = (IO::get(g + j) * R.s0) * R.s1;
  }
  element<C, AMS_OFF>(x, gr, m, v, unused, R.S, F.neg, F.l2, F.dec, F.after);
  const int64_t i = R.i0 + j;
  if constexpr (PB) {
    IO::put_bits(p + j, SRP ? IO::stochastic(x, R.kp, i) : IO::nearest(x));
  } else {
    IO::put(p + j, x);
  }
  if constexpr (SB && SRS) {
    IO::put_bits2(mm + j, IO::stochastic(m, R.km, i), vv + j, IO::stochastic(v, R.kv, i));
  } else if constexpr (SB) {
    typename IO::B bm, bv;
    IO::nearest2(m, v, bm, bv);
    IO::put_bits2(mm + j, bm, vv + j, bv);
  } else {
    IO::put(mm + j, m);
    IO::put(vv + j, v);
  }
}

// PB: bfloat16 parameters; SB: bfloat16 m and v; SRP / SRS: stochastic rounding of the
// parameters / of m and v. Eight elements at a time (bfloat16 widened and narrowed in
// registers), then the last few one by one. Adam and AdamW with their defaults (not
// maximizing, no L2 term, eps after the correction) get eight-lane loops of their own, the
// flags constants; other flags, one loop that tests them (as slow as the defaults' loops are
// fast: the tests inside the eight-lane loop cost a third of its time).
template <bool AVX, bool PB, bool SB, bool SRP, bool SRS>
__attribute__((always_inline)) inline void lowmem_run(Elem<PB>* __restrict p,
                                                      const Elem<PB>* __restrict g,
                                                      Elem<SB>* __restrict mm,
                                                      Elem<SB>* __restrict vv, int64_t n,
                                                      const Run& R, Flags F) {
  const int64_t n8 = n - n % 8;
  auto loop = [&](Flags f, auto scaled) __attribute__((always_inline)) {
    for (int64_t j = 0; j < n8; j += 8)
      lowmem_at<F8, AVX, PB, SB, SRP, SRS, decltype(scaled)::value>(p, g, mm, vv, j, R, f);
  };
  const bool unscaled = R.s0 == 1.0f && R.s1 == 1.0f;
  if (!F.neg && !F.l2 && F.after && !F.dec && unscaled)
    loop(Flags{false, false, false, true}, std::false_type{});
  else if (!F.neg && !F.l2 && F.after && !F.dec)
    loop(Flags{false, false, false, true}, std::true_type{});
  else if (!F.neg && !F.l2 && F.after && F.dec && unscaled)
    loop(Flags{false, false, true, true}, std::false_type{});
  else if (!F.neg && !F.l2 && F.after && F.dec)
    loop(Flags{false, false, true, true}, std::true_type{});
  else
    loop(F, std::true_type{});
  for (int64_t j = n8; j < n; ++j)
    lowmem_at<float, AVX, PB, SB, SRP, SRS>(p, g, mm, vv, j, R, F);
}

struct LowmemArgs {
  const int64_t* ptrs;
  const int64_t* offsets;
  const int64_t* modes;
  int64_t n;
  Scalars<float> S;
  bool neg, l2, dec, after;
  const float* scales;            // (2, n) or null
  const uint64_t* state_keys;     // (2, n) or null
  const uint64_t* param_keys;     // (1, n) or null
};

inline LowmemArgs lowmem_args(const int64_t* ptrs, const int64_t* offsets,
                              const int64_t* modes, int64_t n, const float* sc,
                              const int64_t* fl, const float* scales,
                              const uint64_t* state_keys, const uint64_t* param_keys) {
  LowmemArgs A;
  A.ptrs = ptrs;
  A.offsets = offsets;
  A.modes = modes;
  A.n = n;
  std::memcpy(&A.S, sc, sizeof(A.S));
  A.neg = fl[F_MAXIMIZE] != 0;
  A.l2 = fl[F_WD] == WD_L2;
  A.dec = fl[F_WD] == WD_DECOUPLED;
  A.after = fl[F_EPS] == EPS_AFTER;
  A.scales = scales;
  A.state_keys = state_keys;
  A.param_keys = param_keys;
  return A;
}

// tensor k's run from its element i0: the scalars, its factors and rounding keys
inline Run run_of(const LowmemArgs& A, int64_t k, int64_t i0) {
  const int64_t n = A.n;
  Run R;  // (a copy of the scalars: nothing the loop stores can alias it)
  R.S = A.S;
  R.s0 = A.scales ? A.scales[k] : 1.0f;
  R.s1 = A.scales ? A.scales[n + k] : 1.0f;
  R.kp = A.param_keys ? A.param_keys[k] : 0;
  R.km = A.state_keys ? A.state_keys[k] : 0;
  R.kv = A.state_keys ? A.state_keys[n + k] : 0;
  R.i0 = i0;
  return R;
}

// Tensor k's state kind, its run of elements a .. b (float32 or bfloat16 state).
template <bool AVX, bool PB, bool SRP, bool SRS>
__attribute__((always_inline)) inline void lowmem_tensor(const LowmemArgs& A, int64_t k,
                                                         int64_t a, int64_t b) {
  const int64_t n = A.n;
  const int64_t esize = PB ? 2 : 4;
  const bool sb = A.modes[k] == MODE_BF16;
  const int64_t ssize = sb ? 2 : 4;
  void* p = reinterpret_cast<char*>(A.ptrs[R_P * n + k]) + a * esize;
  const void* g = reinterpret_cast<const char*>(A.ptrs[R_G * n + k]) + a * esize;
  void* m = reinterpret_cast<char*>(A.ptrs[R_M * n + k]) + a * ssize;
  void* v = reinterpret_cast<char*>(A.ptrs[R_V * n + k]) + a * ssize;
  const Run R = run_of(A, k, a);
  const Flags F{A.neg, A.l2, A.dec, A.after};
  Elem<PB>* pp = static_cast<Elem<PB>*>(p);
  const Elem<PB>* gg = static_cast<const Elem<PB>*>(g);
  if (sb) {
    lowmem_run<AVX, PB, true, SRP, SRS>(pp, gg, static_cast<uint16_t*>(m),
                                        static_cast<uint16_t*>(v), b - a, R, F);
  } else {
    lowmem_run<AVX, PB, false, SRP, false>(pp, gg, static_cast<float*>(m),
                                           static_cast<float*>(v), b - a, R, F);
  }
}

// One thread's share of a low-precision launch: elements lo .. hi of the tensors end to end.
template <bool AVX, bool PB, bool SRP, bool SRS>
__attribute__((always_inline)) inline void lowmem_range(const LowmemArgs& A, int64_t lo,
                                                        int64_t hi) {
  const int64_t n = A.n;
  int64_t k = std::upper_bound(A.offsets, A.offsets + n + 1, lo) - A.offsets - 1;
  for (; k < n && A.offsets[k] < hi; ++k) {
    const int64_t a = std::max(lo, A.offsets[k]) - A.offsets[k];
    const int64_t b = std::min(hi, A.offsets[k + 1]) - A.offsets[k];
    if (b > a) lowmem_tensor<AVX, PB, SRP, SRS>(A, k, a, b);
  }
}

// The arithmetic floor's loop (for benchmarks): `count` elements of the float32 element rule
// above with Adam's defaults (the loop lowmem_run gives them: after correction, no weight
// decay, no clip factors), on one thread's scratch arrays p, g, m, v of `width` elements each,
// stepped over and over. Small enough for the L1 cache: a step's arithmetic with next to none
// of its memory traffic.
template <bool AVX>
__attribute__((always_inline)) inline void arith_range(float* s, int64_t width, int64_t count,
                                                       const Run& R) {
  const Flags F{false, false, false, true};
  for (int64_t done = 0; done < count; done += width)
    lowmem_run<AVX, false, false, false, false>(s, s + width, s + 2 * width, s + 3 * width,
                                                std::min(width, count - done), R, F);
}

#if ADAMLAB_HAVE_AVX2
__attribute__((target("avx2"), flatten)) void arith_avx2(float* s, int64_t width, int64_t count,
                                                         const Run& R) {
  arith_range<true>(s, width, count, R);
}
#endif

void arith_base(float* s, int64_t width, int64_t count, const Run& R) {
  arith_range<false>(s, width, count, R);
}

// -- 8-bit state: numba_lowmem's MODE_8BIT, block by block -----------------------------------
//
// A block of B elements of m (and of v): its codes q (uint8) and absmax N (float32). Each
// block: m = Q[q]·N into a float32 buffer (the map Q: signed for m, unsigned for v), the
// step above with float32 state on the buffers (the new m and v left there), the new
// absmax (the largest bit pattern of |m|: NaN above inf), then each code by the cell table
// of adamlab.kernels.lowmem_tables (one entry, one integer comparison), from m·(1/N). A
// block of zeros, or holding NaN or ±inf, gets the zero code (and that absmax).

struct Tables8 {  // adamlab.kernels.lowmem_tables.cpp_tables (addresses and numbers)
  const float* code[2];      // the maps: [0] signed (m), [1] unsigned (v)
  const int32_t* cells[2];   // their cell tables (two halves: x >= 0, then x < 0)
  int64_t first, n_cells, shift, block;
  uint8_t zero[2];           // the index of 0 in each map
  const int32_t* wide[2];    // the cell tables by a float's top 16 bits (lowmem_tables.wide_cells)
};

// the code of x in [-1, 1]: numba_lowmem._quantize
inline uint8_t code_of(float x, const int32_t* cells, const Tables8& T) {
  const uint32_t u = f32_bits(x);
  const uint32_t low = (1u << T.shift) - 1u;
  const int64_t neg = u >> 31;
  const uint32_t a = u & 0x7FFFFFFFu;
  const int64_t c = std::min(std::max(int64_t(a >> T.shift) - T.first, int64_t(0)), T.n_cells - 1);
  const int32_t key = int32_t((a & low) ^ (low * uint32_t(neg)));
  const int32_t e = cells[c + neg * T.n_cells];
  return uint8_t((e >> 20) + (key >= (e & 0xFFFFF) ? 1 : 0));
}

#if ADAMLAB_HAVE_AVX2
// code_of on 32 lanes, x[0..32) times inverse, eight lanes at a time by the wide table
// (lowmem_tables.wide_cells): its index is the float's top 16 bits (the sign among them)
// less the first cell, saturating at 0 (vpsubusw on the low halves; the high halves are
// 0); its entry (j + 1) << 20 | key, read by a gather; the value's key its low 16 bits,
// flipped for x < 0; the code (j + 1) - 1 where the key lies below the cell's threshold.
// (code_of's steps, with the clamp and the choice of half in the table.)
__attribute__((target("avx2"))) inline void codes32_avx2(const float* x, float inverse,
                                                         uint8_t* q, const int32_t* wide,
                                                         const Tables8& T) {
  const __m256 inv = _mm256_set1_ps(inverse);
  const __m256i first = _mm256_set1_epi32(int(T.first));
  const __m256i low = _mm256_set1_epi32(0xFFFF), mask20 = _mm256_set1_epi32(0xFFFFF);
  __m256i out[4];
  for (int i = 0; i < 4; ++i) {
    const __m256i u = _mm256_castps_si256(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), inv));
    const __m256i c = _mm256_subs_epu16(_mm256_srli_epi32(u, 16), first);
    const __m256i key = _mm256_and_si256(_mm256_xor_si256(u, _mm256_srai_epi32(u, 31)), low);
    const __m256i e = _mm256_i32gather_epi32(wide, c, 4);
    out[i] = _mm256_add_epi32(_mm256_srai_epi32(e, 20),
                              _mm256_cmpgt_epi32(_mm256_and_si256(e, mask20), key));
  }
  const __m256i w01 = _mm256_packus_epi32(out[0], out[1]), w23 = _mm256_packus_epi32(out[2], out[3]);
  const __m256i b = _mm256_packus_epi16(w01, w23);  // (lanes 0-3, 8-11, 16-19, 24-27 | 4-7 ...)
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q),
                      _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

// m = Q[q]·N on eight lanes (eight scalar loads: faster here than a gather)
__attribute__((target("avx2"))) inline void dequantize8_avx2(const uint8_t* q, const float* code,
                                                             float n, float* out) {
  const __m256 x = _mm256_setr_ps(code[q[0]], code[q[1]], code[q[2]], code[q[3]], code[q[4]],
                                   code[q[5]], code[q[6]], code[q[7]]);
  _mm256_storeu_ps(out, _mm256_mul_ps(x, _mm256_set1_ps(n)));
}
#endif

// m = Q[q]·N on a block (numba_lowmem._step8's loads)
template <bool AVX>
__attribute__((always_inline)) inline void dequantize(const uint8_t* q, const float* code,
                                                      float n, float* out, int64_t w) {
  int64_t j = 0;
#if ADAMLAB_HAVE_AVX2
  if constexpr (AVX)
    for (; j + 8 <= w; j += 8) dequantize8_avx2(q + j, code, n, out + j);
#endif
  for (; j < w; ++j) out[j] = code[q[j]] * n;
}

// A block's new absmax (numba_lowmem._absmax, _absmax_store): stored; returns whether the
// block needs codes (with 1/N in inverse), else its codes are the zero code (written here).
inline bool new_absmax(const float* x, int64_t w, uint8_t* q, float* absmax, float& inverse,
                       const Tables8& T, int s) {
  uint32_t top = 0;
  for (int64_t j = 0; j < w; ++j) top = std::max(top, f32_bits(x[j]) & 0x7FFFFFFFu);
  *absmax = top > 0x7F800000u ? bits_f32(0x7FC00000u) : bits_f32(top);
  if (top == 0 || top >= 0x7F800000u) {
    std::memset(q, T.zero[s], size_t(w));
    return false;
  }
  const float nb = bits_f32(top), tiny = 1e-38f;
  inverse = 1.0f / (tiny > nb ? tiny : nb);
  return true;
}

// codes of x[0..w) times inverse (numba_lowmem._codes)
template <bool AVX>
__attribute__((always_inline)) inline void codes(const float* x, int64_t w, float inverse,
                                                 uint8_t* q, const Tables8& T, int s) {
  const int32_t* cells = T.cells[s];
  int64_t j = 0;
#if ADAMLAB_HAVE_AVX2
  if constexpr (AVX)
    for (; j + 32 <= w; j += 32) codes32_avx2(x + j, inverse, q + j, T.wide[s], T);
#endif
  for (; j < w; ++j) q[j] = code_of(x[j] * inverse, cells, T);
}

// Tensor k's elements a .. b (whole blocks, but for the tensor's last), 8-bit state; buf:
// two buffers of `width` elements (a block, or b - a if fewer). Block after block:
// dequantize, step, new absmax, codes. (numba's kernel overlaps the step of one block with
// the codes of the one before; here that made no difference, measured, and the blocks stay
// apart.)
template <bool AVX, bool PB, bool SRP>
__attribute__((always_inline)) inline void lowmem8_tensor(const LowmemArgs& A, const Tables8& T,
                                                          int64_t k, int64_t a, int64_t b,
                                                          float* buf, int64_t width) {
  const int64_t n = A.n, B = T.block;
  Elem<PB>* p = reinterpret_cast<Elem<PB>*>(A.ptrs[R_P * n + k]);
  const Elem<PB>* g = reinterpret_cast<const Elem<PB>*>(A.ptrs[R_G * n + k]);
  uint8_t* qm = reinterpret_cast<uint8_t*>(A.ptrs[R_M * n + k]);
  uint8_t* qv = reinterpret_cast<uint8_t*>(A.ptrs[R_V * n + k]);
  float* am = reinterpret_cast<float*>(A.ptrs[R_AM * n + k]);
  float* av = reinterpret_cast<float*>(A.ptrs[R_AV * n + k]);
  const Flags F{A.neg, A.l2, A.dec, A.after};
  Run R = run_of(A, k, a);
  for (int64_t i0 = a; i0 < b; i0 += B) {
    const int64_t w = std::min(B, b - i0), blk = i0 / B;
    float *bm = buf, *bv = buf + width, inv = 0.0f;
    dequantize<AVX>(qm + i0, T.code[0], am[blk], bm, w);
    dequantize<AVX>(qv + i0, T.code[1], av[blk], bv, w);
    R.i0 = i0;
    lowmem_run<AVX, PB, false, SRP, false>(p + i0, g + i0, bm, bv, w, R, F);
    if (new_absmax(bm, w, qm + i0, am + blk, inv, T, 0)) codes<AVX>(bm, w, inv, qm + i0, T, 0);
    if (new_absmax(bv, w, qv + i0, av + blk, inv, T, 1)) codes<AVX>(bv, w, inv, qv + i0, T, 1);
  }
}

// Chunks c0 .. c1 of a launch with 8-bit tensors: (tensor, start, stop) rows, whole blocks.
template <bool AVX, bool PB, bool SRP, bool SRS>
__attribute__((always_inline)) inline void chunks_range(const LowmemArgs& A, const Tables8& T,
                                                        const int64_t* chunks, int64_t c0,
                                                        int64_t c1) {
  // two buffers of a block, or of the longest 8-bit run here if shorter (uninitialised)
  int64_t longest = 0;
  for (int64_t c = c0; c < c1; ++c)
    if (A.modes[chunks[3 * c]] == MODE_8BIT)
      longest = std::max(longest, chunks[3 * c + 2] - chunks[3 * c + 1]);
  const int64_t width = std::min(T.block, longest);
  std::unique_ptr<float[]> buffers(new float[size_t(2 * width)]);
  for (int64_t c = c0; c < c1; ++c) {
    const int64_t k = chunks[3 * c], lo = chunks[3 * c + 1], hi = chunks[3 * c + 2];
    if (A.modes[k] == MODE_8BIT)
      lowmem8_tensor<AVX, PB, SRP>(A, T, k, lo, hi, buffers.get(), width);
    else
      lowmem_tensor<AVX, PB, SRP, SRS>(A, k, lo, hi);
  }
}

#if ADAMLAB_HAVE_AVX2
// (flatten: every call inlined, the AVX2 helpers above too)
template <bool PB, bool SRP, bool SRS>
__attribute__((target("avx2"), flatten)) void lowmem_avx2(const LowmemArgs& A, int64_t lo,
                                                          int64_t hi) {
  lowmem_range<true, PB, SRP, SRS>(A, lo, hi);
}
#endif

template <bool PB, bool SRP, bool SRS>
void lowmem_base(const LowmemArgs& A, int64_t lo, int64_t hi) {
  lowmem_range<false, PB, SRP, SRS>(A, lo, hi);
}

#if ADAMLAB_HAVE_AVX2
template <bool PB, bool SRP, bool SRS>
__attribute__((target("avx2"), flatten)) void chunks_avx2(const LowmemArgs& A,
                                                          const Tables8& T,
                                                          const int64_t* chunks, int64_t c0,
                                                          int64_t c1) {
  chunks_range<true, PB, SRP, SRS>(A, T, chunks, c0, c1);
}
#endif

template <bool PB, bool SRP, bool SRS>
void chunks_base(const LowmemArgs& A, const Tables8& T, const int64_t* chunks, int64_t c0,
                 int64_t c1) {
  chunks_range<false, PB, SRP, SRS>(A, T, chunks, c0, c1);
}

// A launch by chunks (8-bit tensors among them): the chunks in parallel, shared out by
// their elements (a thread takes the chunks that start in its share of the elements laid
// end to end), unless the launch has fewer than `grain` elements (then on the calling
// thread).
template <bool PB, bool SRP, bool SRS>
void chunks_step(const LowmemArgs& A, const Tables8& T, const int64_t* chunks, int64_t n_chunks,
                 int64_t grain) {
  auto fn = &chunks_base<PB, SRP, SRS>;
#if ADAMLAB_HAVE_AVX2
  if (use_avx2()) fn = &chunks_avx2<PB, SRP, SRS>;
#endif
  std::vector<int64_t> starts(size_t(n_chunks) + 1, 0);
  for (int64_t c = 0; c < n_chunks; ++c)
    starts[c + 1] = starts[c] + chunks[3 * c + 2] - chunks[3 * c + 1];
  const int64_t total = starts[n_chunks];
  if (total < grain || n_chunks == 1) return fn(A, T, chunks, 0, n_chunks);
  const int64_t* first = starts.data();
  at::parallel_for(0, total, std::max<int64_t>(1, grain / 2), [&](int64_t lo, int64_t hi) {
    const int64_t c0 = std::lower_bound(first, first + n_chunks, lo) - first;
    const int64_t c1 = std::lower_bound(first, first + n_chunks, hi) - first;
    if (c1 > c0) fn(A, T, chunks, c0, c1);
  });
}

#if ADAMLAB_HAVE_AVX2
__attribute__((target("avx2"), flatten)) void codes_avx2(const float* x, int64_t n, uint8_t* q,
                                                         const Tables8& T, int s) {
  codes<true>(x, n, 1.0f, q, T, s);
}
#endif

// For tests: the codes of normalized values x[0..n) (map s: 0 signed, 1 unsigned), by the
// path the kernel takes (AVX2 or not, as dispatch picks)
void codes_of(const float* x, int64_t n, uint8_t* q, const Tables8& T, int s) {
#if ADAMLAB_HAVE_AVX2
  if (use_avx2()) return codes_avx2(x, n, q, T, s);
#endif
  codes<false>(x, n, 1.0f, q, T, s);
}

template <bool PB>
void chunks_dispatch(const LowmemArgs& A, const Tables8& T, const int64_t* chunks,
                     int64_t n_chunks, int64_t grain) {
  const bool srp = PB && A.param_keys != nullptr;
  const bool srs = A.state_keys != nullptr;
  if (srp && srs) return chunks_step<PB, PB, true>(A, T, chunks, n_chunks, grain);
  if (srp) return chunks_step<PB, PB, false>(A, T, chunks, n_chunks, grain);
  if (srs) return chunks_step<PB, false, true>(A, T, chunks, n_chunks, grain);
  return chunks_step<PB, false, false>(A, T, chunks, n_chunks, grain);
}

template <bool PB, bool SRP, bool SRS>
void lowmem_step(const LowmemArgs& A, int64_t grain) {
  const int64_t total = A.offsets[A.n];
  const int64_t blocks = (total + BLOCK - 1) / BLOCK;
  auto fn = &lowmem_base<PB, SRP, SRS>;
#if ADAMLAB_HAVE_AVX2
  if (use_avx2()) fn = &lowmem_avx2<PB, SRP, SRS>;
#endif
  at::parallel_for(0, blocks, std::max<int64_t>(1, grain / BLOCK), [&](int64_t b0, int64_t b1) {
    fn(A, b0 * BLOCK, std::min(b1 * BLOCK, total));
  });
}

template <bool PB>
void lowmem_dispatch(const LowmemArgs& A, int64_t grain) {
  const bool srp = PB && A.param_keys != nullptr;
  const bool srs = A.state_keys != nullptr;
  if (srp && srs) return lowmem_step<PB, PB, true>(A, grain);
  if (srp) return lowmem_step<PB, PB, false>(A, grain);
  if (srs) return lowmem_step<PB, false, true>(A, grain);
  return lowmem_step<PB, false, false>(A, grain);
}

}  // namespace

extern "C" {

// Step n tensors of storage kind `kind` in place. ptrs: int64 (5, n) row-major: addresses
// of p, g, m, v, v_max (m's address again without AMSGrad); offsets: int64 (n + 1), the
// prefix sums of the tensors' element counts; sc: 12 scalars in the compute dtype; fl: 4
// int64 flags; grain: fewer elements than this run on the calling thread alone.
// Returns 0, or -1 on an unknown kind or an exception.
int adamlab_adam_step(int kind, const int64_t* ptrs, const int64_t* offsets, int64_t n,
                      const void* sc, const int64_t* fl, int64_t grain) {
  try {
    switch (kind) {
      case K_FLOAT32: dispatch<K_FLOAT32>(ptrs, offsets, n, sc, fl, grain); return 0;
      case K_FLOAT64: dispatch<K_FLOAT64>(ptrs, offsets, n, sc, fl, grain); return 0;
      case K_BFLOAT16: dispatch<K_BFLOAT16>(ptrs, offsets, n, sc, fl, grain); return 0;
      case K_FLOAT16: dispatch<K_FLOAT16>(ptrs, offsets, n, sc, fl, grain); return 0;
      default: return -1;
    }
  } catch (...) {
    return -1;
  }
}

// The step with low-precision state over n tensors of parameter kind `kind` (K_FLOAT32 or
// K_BFLOAT16). ptrs: int64 (6, n) row-major: p, g, m, v (rows 4 and 5, the 8-bit absmax
// tables, are not read); offsets: int64 (n + 1) prefix sums of the element counts; modes:
// int64 (n), MODE_FP32 or MODE_BF16 state per tensor; sc: 12 float32 scalars; fl: 4 int64
// flags (no AMSGrad); scales: float32 (2, n) clip and unscale factors, or null; state_keys:
// uint64 (2, n) stochastic-rounding keys of m and v, or null; param_keys: uint64 (1, n) those
// of bfloat16 parameters, or null. Returns 0; -1 on an unknown kind, an 8-bit mode, AMSGrad
// or an exception (nothing is written then).
int adamlab_lowmem_step(int kind, const int64_t* ptrs, const int64_t* offsets,
                        const int64_t* modes, int64_t n, const float* sc, const int64_t* fl,
                        const float* scales, const uint64_t* state_keys,
                        const uint64_t* param_keys, int64_t grain) {
  try {
    if (fl[F_AMSGRAD] != AMS_OFF) return -1;
    for (int64_t k = 0; k < n; ++k)
      if (modes[k] != MODE_FP32 && modes[k] != MODE_BF16) return -1;
    const LowmemArgs A = lowmem_args(ptrs, offsets, modes, n, sc, fl, scales, state_keys,
                                     param_keys);
    switch (kind) {
      case K_FLOAT32: lowmem_dispatch<false>(A, grain); return 0;
      case K_BFLOAT16: lowmem_dispatch<true>(A, grain); return 0;
      default: return -1;
    }
  } catch (...) {
    return -1;
  }
}

// tab's numbers as a Tables8 (see adamlab_lowmem8_step)
Tables8 tables8(const int64_t* tab) {
  Tables8 T;
  for (int s = 0; s < 2; ++s) {
    T.code[s] = reinterpret_cast<const float*>(tab[s]);
    T.cells[s] = reinterpret_cast<const int32_t*>(tab[2 + s]);
    T.zero[s] = uint8_t(tab[8 + s]);
    T.wide[s] = reinterpret_cast<const int32_t*>(tab[10 + s]);
  }
  T.first = tab[4];
  T.n_cells = tab[5];
  T.shift = tab[6];
  T.block = tab[7];
  return T;
}

// The same with 8-bit state among the tensors (MODE_8BIT: ptrs rows 2 and 3 the codes, rows
// 4 and 5 the absmax tables), by chunks: int64 (n_chunks, 3) rows (tensor, start, stop), each
// whole blocks of its tensor but for the tensor's last (lowmem_tables.chunk_table). tab: int64
// (12): the addresses of the signed and unsigned maps (float32, 256) and of their cell tables
// (int32), the first cell, the number of cells, the cell shift, the block size, the zero
// codes of the two maps, the addresses of their wide cell tables (int32). Returns 0; -1 on an unknown kind or mode, AMSGrad or an exception.
int adamlab_lowmem8_step(int kind, const int64_t* ptrs, const int64_t* modes, int64_t n,
                         const int64_t* chunks, int64_t n_chunks, const float* sc,
                         const int64_t* fl, const float* scales, const uint64_t* state_keys,
                         const uint64_t* param_keys, const int64_t* tab, int64_t grain) {
  try {
    if (fl[F_AMSGRAD] != AMS_OFF || tab[7] <= 0 || (tab[7] & (tab[7] - 1)) != 0) return -1;
    for (int64_t k = 0; k < n; ++k)
      if (modes[k] != MODE_FP32 && modes[k] != MODE_BF16 && modes[k] != MODE_8BIT) return -1;
    const LowmemArgs A = lowmem_args(ptrs, nullptr, modes, n, sc, fl, scales, state_keys,
                                     param_keys);
    const Tables8 T = tables8(tab);
    switch (kind) {
      case K_FLOAT32: chunks_dispatch<false>(A, T, chunks, n_chunks, grain); return 0;
      case K_BFLOAT16: chunks_dispatch<true>(A, T, chunks, n_chunks, grain); return 0;
      default: return -1;
    }
  } catch (...) {
    return -1;
  }
}

// For tests: the 8-bit kernel's codes of normalized values (see codes_of above).
void adamlab_codes8(const float* x, int64_t n, uint8_t* q, const int64_t* tab, int s) {
  codes_of(x, n, q, tables8(tab), s);
}

// -- tensors, read from their TensorImpl addresses -------------------------------------------
//
// For adamlab.torch.fast's plans: a step checks that the tensors it is about to read and
// write are still what the plan recorded. Python reads a tensor's address in several
// dependent steps, one call each, on caches the previous step's stream has emptied; here
// the loops first prefetch every level (the tensors, their storages, the parameters'
// gradients), so the cache misses overlap. The addresses are Tensor._cdata (a plain tensor's
// TensorImpl); the caller holds every tensor for the call, which runs with the GIL held.

using c10::TensorImpl;

inline const TensorImpl* impl_at(int64_t address) {
  return reinterpret_cast<const TensorImpl*>(address);
}

inline void prefetch_storages(const std::vector<const TensorImpl*>& ts) {
  for (const TensorImpl* t : ts) __builtin_prefetch(t);
  for (const TensorImpl* t : ts)
    if (t != nullptr) __builtin_prefetch(t->unsafe_storage().unsafeGetStorageImpl());
}

// Whether t is a plain (no Python dispatch; not a lazy conjugate, negative or zero view)
// contiguous strided CPU tensor with storage, of scalar type `type` and `numel` elements;
// if so its data address goes to *ptr.
inline bool plain(const TensorImpl* t, int64_t type, int64_t numel, int64_t* ptr) {
  if (t->layout() != c10::kStrided || t->device_type() != c10::DeviceType::CPU ||
      t->key_set().has(c10::DispatchKey::Python) || !t->has_storage() ||
      t->is_conj() || t->is_neg() || t->_is_zerotensor() ||  // lazy views: not the memory
      static_cast<int64_t>(t->dtype().toScalarType()) != type || t->numel() != numel ||
      !t->is_contiguous())
    return false;
  *ptr = reinterpret_cast<int64_t>(t->data());
  return true;
}

// Tensor k passes if plain(), of types[k] with numels[k] elements at data address expect[k].
// Returns 1 if all pass, 0 if one does not, -1 if reading one raised.
int adamlab_check_tensors(const int64_t* impls, int64_t n, const int64_t* types,
                          const int64_t* numels, const int64_t* expect) {
  try {
    std::vector<const TensorImpl*> ts(n);
    for (int64_t k = 0; k < n; ++k) ts[k] = impl_at(impls[k]);
    prefetch_storages(ts);
    for (int64_t k = 0; k < n; ++k) {
      int64_t ptr;
      if (!plain(ts[k], types[k], numels[k], &ptr) || ptr != expect[k]) return 0;
    }
    return 1;
  } catch (...) {
    return -1;
  }
}

// Parameters and their gradients: parameter k (TensorImpl at p_impls[k]) must pass
// adamlab_check_tensors' test against types[k], numels[k], p_ptrs[k], and have a gradient
// that is plain() with the same type and size; the gradients' data addresses go to g_out.
// Returns 1 if all pass, 0 if one does not (g_out partly written), -1 if reading raised.
int adamlab_check_params(const int64_t* p_impls, int64_t n, const int64_t* types,
                         const int64_t* numels, const int64_t* p_ptrs, int64_t* g_out) {
  try {
    std::vector<const TensorImpl*> ps(n), gs(n);
    for (int64_t k = 0; k < n; ++k) ps[k] = impl_at(p_impls[k]);
    for (const TensorImpl* t : ps) __builtin_prefetch(t);
    for (const TensorImpl* t : ps) __builtin_prefetch(t->autograd_meta());
    for (int64_t k = 0; k < n; ++k) {
      // (an at::Tensor is its base at::TensorBase, one pointer: read it as that, without
      // ATen/core/Tensor.h, which would triple the build time)
      const auto& g = reinterpret_cast<const at::TensorBase&>(ps[k]->grad());
      gs[k] = g.defined() ? g.unsafeGetTensorImpl() : nullptr;
    }
    prefetch_storages(gs);
    prefetch_storages(ps);
    for (int64_t k = 0; k < n; ++k) {
      int64_t ptr;
      if (!plain(ps[k], types[k], numels[k], &ptr) || ptr != p_ptrs[k]) return 0;
      if (gs[k] == nullptr || !plain(gs[k], types[k], numels[k], &g_out[k])) return 0;
    }
    return 1;
  } catch (...) {
    return -1;
  }
}

// The scalar type code and element count of n tensors (for a plan's record of them).
int adamlab_describe_tensors(const int64_t* impls, int64_t n, int64_t* types,
                             int64_t* numels) {
  try {
    for (int64_t k = 0; k < n; ++k) {
      types[k] = static_cast<int64_t>(impl_at(impls[k])->dtype().toScalarType());
      numels[k] = impl_at(impls[k])->numel();
    }
    return 0;
  } catch (...) {
    return -1;
  }
}

// Add 1 to the n 0-d step tensors at addrs (double if is_double, else float); write their
// old values to out. Returns 1 if the old values are all equal (the usual case: one step
// count, one launch), else 0.
int adamlab_bump_steps(const int64_t* addrs, int64_t n, int is_double, double* out) {
  int same = 1;
  for (int64_t j = 0; j < n; ++j) {
    if (is_double) {
      double* x = reinterpret_cast<double*>(addrs[j]);
      out[j] = *x;
      *x += 1;
    } else {
      float* x = reinterpret_cast<float*>(addrs[j]);
      out[j] = *x;
      *x += 1;
    }
    same &= out[j] == out[0];
  }
  return same;
}

// For benchmarks: the memory floor of a float32 step over the same tensors, blocks, threads
// and compiled variant: reads p, g, m, v and writes p, m, v once each, with almost no
// arithmetic.
void adamlab_floor_step(const int64_t* ptrs, const int64_t* offsets, int64_t n,
                        int64_t grain) {
  const int64_t total = offsets[n];
  const int64_t blocks = (total + BLOCK - 1) / BLOCK;
  auto fn = &floor_base;
#if ADAMLAB_HAVE_AVX2
  if (use_avx2()) fn = &floor_avx2;
#endif
  at::parallel_for(0, blocks, std::max<int64_t>(1, grain / BLOCK), [&](int64_t b0, int64_t b1) {
    fn(ptrs, offsets, n, b0 * BLOCK, std::min(b1 * BLOCK, total));
  });
}

// For benchmarks: the arithmetic floor of a float32 step of `total` elements over the same
// blocks and threads (arith_range: each thread steps its own scratch arrays, in its L1
// cache). scratch: float32 (slots, 4, width), rows p, g, m, v; thread t uses slot t % slots
// (the caller gives a slot to every thread the launch runs on). sc: the 12 float32 scalars. No
// step through this loop, on these threads, can be faster.
void adamlab_arith_floor(float* scratch, int64_t width, int64_t slots, int64_t total,
                         const float* sc, int64_t grain) {
  if (width < 1 || slots < 1 || total < 1) return;
  Run R{};
  std::memcpy(&R.S, sc, sizeof(R.S));
  R.s0 = R.s1 = 1.0f;
  const int64_t blocks = (total + BLOCK - 1) / BLOCK;
  auto fn = &arith_base;
#if ADAMLAB_HAVE_AVX2
  if (use_avx2()) fn = &arith_avx2;
#endif
  at::parallel_for(0, blocks, std::max<int64_t>(1, grain / BLOCK), [&](int64_t b0, int64_t b1) {
    float* s = scratch + (at::get_thread_num() % slots) * 4 * width;
    fn(s, width, std::min(b1 * BLOCK, total) - b0 * BLOCK, R);
  });
}

// How many threads a step of `total` elements runs on (at::parallel_for as the kernel calls
// it, with an empty body): for tests of the thread settings.
int64_t adamlab_parallel_width(int64_t total, int64_t grain) {
  std::atomic<int64_t> calls{0};
  const int64_t blocks = (total + BLOCK - 1) / BLOCK;
  at::parallel_for(0, blocks, std::max<int64_t>(1, grain / BLOCK),
                   [&](int64_t, int64_t) { calls.fetch_add(1); });
  return calls.load();
}

// at::get_num_threads(), for tests and the debug log
int adamlab_num_threads() { return at::get_num_threads(); }

// Which code the kernels run: -1 by CPU (the default), 0 the baseline, 1 AVX2. Returns the
// choice now in force (0 or 1); asking for AVX2 where it is absent gives the baseline.
int adamlab_set_isa(int choice) {
  isa = choice < 0 ? -1 : (choice == 1 && ADAMLAB_HAVE_AVX2 ? 1 : 0);
#if ADAMLAB_HAVE_AVX2
  if (isa == 1 && !__builtin_cpu_supports("avx2")) isa = 0;
#endif
  return use_avx2() ? 1 : 0;
}

// The address of omp_get_max_threads as this library resolved it (null without OpenMP): the
// loader checks that it lies in PyTorch's OpenMP runtime, not in a second one.
void* adamlab_openmp_probe() {
#ifdef _OPENMP
  return reinterpret_cast<void*>(&omp_get_max_threads);
#else
  return nullptr;
#endif
}

int adamlab_abi_version() { return 8; }
}
