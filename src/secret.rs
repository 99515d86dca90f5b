//! Containers for secrets (API keys, API secrets, private keys, passphrases).
//!
//! Owns: the one type every secret travels in, the sealed form a long-lived secret is kept in
//! ([`SealedSecret`]: encrypted under a per-process key, opened only for the length of one
//! call), and the stack wipe that follows each use. Must not: ever print, log, serialise or
//! compare its contents in a way that leaks them. `Debug` and `Display` print `***`; the
//! memory is wiped on drop (`zeroize`). Read the value only through `expose`, for as short a
//! time as possible (computing a signature, writing the encrypted vault); a secret that lives
//! longer than a command (the API secret, serve's re-arm passphrase) is sealed.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// A secret string, wiped from memory on drop, redacted in `Debug`/`Display`.
#[derive(Clone, Default)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The plain text. Keep the borrow short; never log or format it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first and last 4 characters with the middle hidden (`vmPU…Eh8A`), for API keys only
    /// (never for a secret). Short values are fully hidden.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() < 12 {
            return "***".to_string();
        }
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value.to_string())
    }
}

/// Constant-time in the contents (the length aside), so a comparison never tells how many
/// leading characters matched. Lets messages that carry a secret (the screen's re-arm command)
/// keep deriving `PartialEq`.
impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.expose().as_bytes(), other.expose().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for SecretString {}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Secret bytes (an Ed25519 private key, a derived key), wiped on drop, redacted in `Debug`.
#[derive(Clone, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(value: Vec<u8>) -> Self {
        Self(Zeroizing::new(value))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A secret held encrypted in memory: AES-256-GCM under a random key made once per process
/// (from the operating system's generator; the key lives in a wiped buffer and is never
/// written anywhere). Its plaintext exists only inside [`SealedSecret::with_plain`], in a
/// buffer wiped when the closure returns, so a copy of this process's memory (a core file
/// written despite the hardening, a swapped page, `/proc/<pid>/mem` read by root, a debugger)
/// holds ciphertext, not the secret, except during that call. The per-process key is in memory
/// too: this stops a scan for the secret and a leak of one region, not an attacker who reads
/// the whole process at leisure.
///
/// `Debug` prints `***`; cloning copies ciphertext only.
#[derive(Clone)]
pub struct SealedSecret {
    nonce: [u8; 12],
    tag: aes_gcm::Tag,
    sealed: Vec<u8>,
}

/// The per-process sealing key, made on first use.
fn process_key() -> &'static Zeroizing<[u8; 32]> {
    static KEY: std::sync::OnceLock<Zeroizing<[u8; 32]>> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = Zeroizing::new([0u8; 32]);
        fill_random(key.as_mut_slice());
        key
    })
}

/// Random bytes from the operating system (`getrandom`), or from the thread generator (itself
/// seeded from the operating system) should that call fail.
fn fill_random(out: &mut [u8]) {
    use rand::{Rng as _, TryRng as _};
    if rand::rngs::SysRng.try_fill_bytes(out).is_err() {
        rand::rng().fill_bytes(out);
    }
}

fn process_cipher() -> aes_gcm::Aes256Gcm {
    use aes_gcm::KeyInit as _;
    // Built per call and wiped on drop (aes-gcm's `zeroize` feature).
    aes_gcm::Aes256Gcm::new(&aes_gcm::Key::<aes_gcm::Aes256Gcm>::from(**process_key()))
}

impl SealedSecret {
    /// Encrypts `plain` (the caller wipes its own copy).
    pub fn seal(plain: &[u8]) -> SealedSecret {
        use aes_gcm::aead::AeadInOut as _;
        let mut nonce = [0u8; 12];
        fill_random(&mut nonce);
        let mut sealed = plain.to_vec();
        let tag = process_cipher()
            .encrypt_inout_detached(&aes_gcm::Nonce::from(nonce), b"", sealed.as_mut_slice().into())
            .unwrap_or_default();
        wipe_stack_words::<2048>();
        SealedSecret { nonce, tag, sealed }
    }

    /// Seals a secret string; the plaintext `String` is wiped as it is dropped here.
    pub fn from_string(secret: SecretString) -> SealedSecret {
        Self::seal(secret.expose().as_bytes())
    }

    /// Seals secret bytes; the plaintext is wiped as it is dropped here.
    pub fn from_bytes(secret: SecretBytes) -> SealedSecret {
        Self::seal(secret.expose())
    }

    /// Length of the secret in bytes.
    pub fn len(&self) -> usize {
        self.sealed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sealed.is_empty()
    }

    /// Calls `f` with the plaintext, in a buffer wiped when `f` returns (then 16 KiB of the
    /// stack below this call is wiped too). Should decryption fail (it cannot, short of memory corruption),
    /// `f` gets an empty slice, which every user treats as "no secret".
    pub fn with_plain<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        use aes_gcm::aead::AeadInOut as _;
        let mut buf = Zeroizing::new(self.sealed.clone());
        let opened = process_cipher()
            .decrypt_inout_detached(
                &aes_gcm::Nonce::from(self.nonce),
                b"",
                buf.as_mut_slice().into(),
                &self.tag,
            )
            .is_ok();
        let out = f(if opened { buf.as_slice() } else { &[] });
        drop(buf);
        wipe_stack_words::<2048>();
        out
    }

    /// A plaintext copy for a caller that needs a [`SecretString`] for a moment (a re-arm's
    /// passphrase check); it is wiped when dropped. Empty when the secret is not UTF-8.
    pub fn open_string(&self) -> SecretString {
        self.with_plain(|p| match std::str::from_utf8(p) {
            Ok(text) => SecretString::from(text),
            Err(_) => SecretString::default(),
        })
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Overwrites 64 KiB of this thread's stack below the caller with zeros (volatile writes), so
/// what a finished call left there (a hash's block buffer holding a passphrase, a key schedule
/// on the stack) does not stay until something else happens to overwrite it. Called after
/// the unlock's steps (Argon2, parsing the vault); a signature wipes 16 KiB (its hash and key
/// schedule use a few).
pub fn wipe_stack() {
    wipe_stack_words::<8192>();
}

/// Zeros `N` 8-byte words of stack below the caller (volatile: the writes cannot be elided).
#[inline(never)]
fn wipe_stack_words<const N: usize>() {
    let mut area = [0u64; N];
    area.zeroize();
    std::hint::black_box(&area);
}

impl Drop for SecretString {
    fn drop(&mut self) {
        // Zeroizing already wipes; this makes the intent explicit for readers.
        self.0.zeroize();
    }
}

/// The process's allocator: the system's, with every block wiped before it goes back.
///
/// The secrets crbot holds itself are sealed ([`SealedSecret`]) and wiped ([`SecretString`]),
/// but a secret also passes through buffers that belong to other crates: the HTTP client's read
/// buffer and the AWS SDK's response body when keys are fetched from a secrets service, a JSON
/// parser's scratch space. They are freed, not wiped, and freed memory keeps its bytes until it
/// is reused. Wiping every block on free (and on a reallocation that moves it) closes that gap
/// for the whole process, whoever allocated the block. Costs a `memset` of what is freed: a few
/// nanoseconds for the small blocks of the hot paths (`docs/PERFORMANCE.md`).
#[derive(Debug, Default, Clone, Copy)]
pub struct WipeOnFree;

#[allow(unsafe_code)]
// SAFETY: every method forwards to `System` with the caller's own layout; the only addition is
// writing zeros into a block the caller still owns (before `dealloc`, or before the old block of
// a moving `realloc` is freed), which is within the block's `layout.size()` bytes.
unsafe impl std::alloc::GlobalAlloc for WipeOnFree {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes (the caller's contract);
        // volatile, so the compiler cannot drop the writes to memory about to be freed.
        unsafe {
            wipe(ptr, layout.size());
            std::alloc::System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // A new block, the contents copied, the old one wiped and freed: the system's realloc
        // could move the block and free the old one with its bytes still in it.
        let Ok(new_layout) = std::alloc::Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `new_layout` has a non-zero size (GlobalAlloc's contract for realloc).
        let new = unsafe { std::alloc::System.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and distinct; the copy is within both sizes.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// Zeros `len` bytes at `ptr`, word by word where it can, with writes the compiler keeps.
#[allow(unsafe_code)]
unsafe fn wipe(ptr: *mut u8, len: usize) {
    let words = len / 8;
    let aligned = (ptr as usize).is_multiple_of(8);
    let mut done = 0;
    if aligned {
        let p = ptr.cast::<u64>();
        for i in 0..words {
            // SAFETY: `i * 8 + 8 <= len`, and `p` is 8-byte aligned.
            unsafe { std::ptr::write_volatile(p.add(i), 0) };
        }
        done = words * 8;
    }
    for i in done..len {
        // SAFETY: `i < len`.
        unsafe { std::ptr::write_volatile(ptr.add(i), 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = SecretString::from("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(format!("{:?}", SecretBytes::new(vec![1, 2, 3])), "***");
    }

    #[test]
    fn equality_compares_the_whole_value() {
        assert_eq!(SecretString::from("same value"), SecretString::from("same value"));
        assert_ne!(SecretString::from("same value"), SecretString::from("same valuf"));
        assert_ne!(
            SecretString::from("same value"),
            SecretString::from("same value ")
        );
        assert_ne!(SecretString::from(""), SecretString::from("x"));
    }

    #[test]
    fn a_sealed_secret_opens_to_its_plaintext_and_holds_none_of_it() {
        let plain: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let sealed = SealedSecret::seal(&plain);
        assert_eq!(sealed.len(), 64);
        assert!(!sealed.sealed.windows(8).any(|w| plain.windows(8).any(|p| p == w)));
        assert_eq!(sealed.with_plain(<[u8]>::to_vec), plain);
        assert_eq!(sealed.clone().with_plain(<[u8]>::to_vec), plain);
        assert_eq!(format!("{sealed:?}"), "***");
        let s = SealedSecret::from_string(SecretString::from("a passphrase of sorts"));
        assert_eq!(s.open_string().expose(), "a passphrase of sorts");
        assert!(SealedSecret::seal(b"").is_empty());
    }

    #[test]
    fn two_seals_of_one_secret_differ() {
        let a = SealedSecret::seal(b"same secret bytes");
        let b = SealedSecret::seal(b"same secret bytes");
        assert_ne!((a.nonce, a.sealed.clone()), (b.nonce, b.sealed.clone()));
    }

    #[test]
    fn masked_shows_only_the_ends_of_long_values() {
        let k = SecretString::from("vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A");
        assert_eq!(k.masked(), "vmPU…Eh8A");
        assert_eq!(SecretString::from("short").masked(), "***");
    }

    #[test]
    #[allow(unsafe_code)]
    fn the_allocator_wipes_a_block_before_it_is_freed_and_moves_contents_on_realloc() {
        use std::alloc::{GlobalAlloc, Layout};
        let a = WipeOnFree;
        let layout = Layout::from_size_align(37, 1).expect("a valid layout");
        // SAFETY: a fresh block of 37 bytes, written and read within it.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            for i in 0..37 {
                *p.add(i) = 0xAB;
            }
            let q = a.realloc(p, layout, 100);
            assert!(!q.is_null());
            assert!((0..37).all(|i| *q.add(i) == 0xAB), "realloc keeps the contents");
            wipe(q, 100);
            assert!((0..100).all(|i| *q.add(i) == 0), "wipe zeroes every byte");
            a.dealloc(q, Layout::from_size_align(100, 1).expect("a valid layout"));
        }
    }
}
