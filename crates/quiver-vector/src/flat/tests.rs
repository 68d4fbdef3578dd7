use super::*;
use crate::space::F32Space;
use crate::Metric;

#[test]
fn topk_keeps_smallest_with_low_id_ties() {
    let mut t = TopK::new(3);
    for (i, d) in [5.0, 1.0, 3.0, 1.0, 0.5, 9.0].into_iter().enumerate() {
        t.push(i as u32, d);
    }
    let ids: Vec<u32> = t.into_sorted().iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![4, 1, 3]);
}

#[test]
fn batch_equals_single() {
    let mut s = F32Space::new(Metric::L2, 5);
    for i in 0..300 {
        let v: Vec<f32> = (0..5).map(|j| ((i * 7 + j * 13) % 17) as f32).collect();
        s.add(&v).unwrap();
    }
    let qs: Vec<Vec<f32>> = (0..40)
        .map(|i| (0..5).map(|j| ((i * 3 + j) % 11) as f32).collect())
        .collect();
    let b = search_batch(&s, &qs, &FlatParams::k(7)).unwrap();
    for (q, r) in qs.iter().zip(&b) {
        assert_eq!(&search(&s, q, &FlatParams::k(7)).unwrap(), r);
    }
}
