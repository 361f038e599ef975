//! Similarity of unit f32 vectors: the dot product every vector search is made of, and
//! the clamped distance the HNSW graph uses.
//!
//! The dot product is the hot loop of both the graph walk and the exact scan. On x86_64
//! with AVX2 and FMA (checked once at run time; the crate is built for the baseline CPU)
//! it runs on 256-bit registers with four independent accumulators; elsewhere a portable
//! loop with sixteen independent lanes lets the compiler vectorise without fast-math.

use hnsw_rs::anndists::dist::Distance;

/// Dot product of two equal-length vectors (cosine similarity for unit vectors).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { x86::dot_avx2_fma(a, b) };
        }
    }
    dot_portable(a, b)
}

/// The portable dot product: sixteen independent partial sums (so the additions do not
/// form one serial chain and map onto SIMD lanes), then the remainder.
#[inline]
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_fma() -> bool {
    // std caches the CPUID result; this is an atomic load after the first call.
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Dot product on AVX2 + FMA: 32 floats per step in four accumulators.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_avx2_fma(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY (all loads): every offset read is < n, the length of both slices.
        unsafe {
            let (mut s0, mut s1, mut s2, mut s3) = (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
            while i + 32 <= n {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)), s1);
                s2 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 16)), _mm256_loadu_ps(pb.add(i + 16)), s2);
                s3 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 24)), _mm256_loadu_ps(pb.add(i + 24)), s3);
                i += 32;
            }
            while i + 8 <= n {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
                i += 8;
            }
            let s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
            let lo = _mm256_castps256_ps128(s);
            let hi = _mm256_extractf128_ps(s, 1);
            let q = _mm_add_ps(lo, hi);
            let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
            let q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
            let mut total = _mm_cvtss_f32(q);
            while i < n {
                total += *pa.add(i) * *pb.add(i);
                i += 1;
            }
            total
        }
    }
}

/// `1 - dot(a, b)` clamped at 0, over unit f32 vectors.
///
/// hnsw_rs's `DistDot` asserts on the slightly negative values float rounding produces
/// and `DistCosine` recomputes norms in f64; this is both safe and fast.
#[derive(Debug, Clone, Copy, Default)]
pub struct DotDistance;

impl Distance<f32> for DotDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::embed::normalize;

    fn naive(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    #[test]
    fn dot_matches_naive_sum_for_every_length() {
        let mut x = 0x2545F4914F6CDD1Du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        };
        for len in [0, 1, 7, 8, 9, 15, 16, 31, 32, 33, 100, 384, 385] {
            let a: Vec<f32> = (0..len).map(|_| next()).collect();
            let b: Vec<f32> = (0..len).map(|_| next()).collect();
            let want = naive(&a, &b);
            for got in [dot(&a, &b), dot_portable(&a, &b)] {
                assert!((got as f64 - want).abs() < 1e-4 * (1.0 + want.abs()), "len {len}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn distance_is_clamped_and_never_panics() {
        let a = normalize(vec![1.0, 2.0, 3.0]);
        assert!(DotDistance.eval(&a, &a) >= 0.0);
        assert!(DotDistance.eval(&a, &a) < 1e-6);
        let b: Vec<f32> = a.iter().map(|x| -x).collect();
        assert!((DotDistance.eval(&a, &b) - 2.0).abs() < 1e-5);
    }
}
