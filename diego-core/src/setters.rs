//! `setter!`: one `#[must_use]` `with_<field>(self, value) -> Self` setter of the diego
//! crates' settings structs, written once for all of them (diego-auction and
//! diego-executor use it too; it is hidden from the docs, not part of the API).
//!
//! The settings structs are `#[non_exhaustive]`, so a user builds one from its `Default`
//! (or its `new`) and these setters rather than with a struct literal. Each setter
//! converts its value with `Into` (a `T` becomes `Some(T)` for an `Option<T>` field);
//! `field: Some(Type)` makes the setter of an `Option` field take anything `Into` the
//! inner type. It knows nothing of what the fields mean.

/// Writes, inside an `impl` block, a documented `#[must_use]` method
/// `setter(self, value: Type) -> Self` that sets `field` to `value.into()`, or to
/// `Some(value.into())` for `field: Some(Type)`.
#[doc(hidden)]
#[macro_export]
macro_rules! setter {
    ($setter:ident => $field:ident: Some($value:ty)) => {
        #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
        #[must_use]
        #[allow(clippy::useless_conversion)] // `T` into a `T` is the identity
        pub fn $setter(mut self, value: $value) -> Self {
            self.$field = Some(value.into());
            self
        }
    };
    ($setter:ident => $field:ident: $value:ty) => {
        #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
        #[must_use]
        #[allow(clippy::useless_conversion)] // `T` into a `T` field is the identity
        pub fn $setter(mut self, value: $value) -> Self {
            self.$field = value.into();
            self
        }
    };
}
