//! Root filesystem URLs: `preloaded:cflinuxfs4`, `docker:///busybox`, ...
//!
//! A rootfs is a URL with a scheme. The scheme names the *provider* a cell must offer;
//! for `preloaded` the rest names the stack, which the cell must list.

/// The scheme of `rootfs` (`preloaded`, `docker`, ...) when it is a URL with a valid
/// scheme and something after it.
pub fn rootfs_scheme(rootfs: &str) -> Option<&str> {
    let (scheme, rest) = rootfs.split_once(':')?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok && !rest.is_empty()).then_some(scheme)
}

/// What follows the scheme: the stack of a `preloaded:` rootfs, the path of others.
pub fn rootfs_rest(rootfs: &str) -> &str {
    rootfs.split_once(':').map(|(_, rest)| rest).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(rootfs_scheme("preloaded:cflinuxfs4"), Some("preloaded"));
        assert_eq!(rootfs_scheme("docker:///busybox"), Some("docker"));
        assert_eq!(rootfs_scheme("cflinuxfs4"), None);
        assert_eq!(rootfs_scheme(":x"), None);
        assert_eq!(rootfs_scheme("1a:x"), None);
        assert_eq!(rootfs_scheme("preloaded:"), None);
        assert_eq!(rootfs_rest("preloaded:cflinuxfs4"), "cflinuxfs4");
    }
}
