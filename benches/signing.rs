//! HMAC-SHA256 signing of a typical order payload, as the REST client does it: encode the
//! parameters, expose the secret from its zeroizing container, sign, wipe the HMAC state,
//! append the signature. Budget: well under 5 µs.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use crbot::exchange::binance::sign::{KeyMaterial, encode_query, sign_bytes, sign_rest};
use crbot::secret::{SecretBytes, SecretString};

fn order_params() -> Vec<(&'static str, String)> {
    vec![
        ("symbol", "BTCUSDT".to_string()),
        ("side", "BUY".into()),
        ("type", "LIMIT".into()),
        ("timeInForce", "GTC".into()),
        ("quantity", "0.00125".into()),
        ("price", "97250.01".into()),
        ("newClientOrderId", "cr-mifk2l3x-1y2z3a4b5c6d".into()),
        ("newOrderRespType", "FULL".into()),
        ("recvWindow", "5000".into()),
        ("timestamp", "1764331200123".into()),
    ]
}

fn bench(c: &mut Criterion) {
    let hmac = KeyMaterial::hmac(SecretString::from(
        "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
    ));
    let params = order_params();
    c.bench_function("hmac_sign_order_query", |b| {
        b.iter(|| sign_rest(black_box(&hmac), black_box(&params)))
    });
    let payload = encode_query(&params);
    c.bench_function("hmac_sign_payload_only", |b| {
        b.iter(|| sign_bytes(black_box(&hmac), black_box(payload.as_bytes())))
    });
    let ed = KeyMaterial::ed25519(SecretBytes::new(vec![7u8; 32]));
    c.bench_function("ed25519_sign_order_query", |b| {
        b.iter(|| sign_rest(black_box(&ed), black_box(&params)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
