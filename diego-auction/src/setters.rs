//! `with_setters!`: the `#[must_use]` `with_<field>(self, value) -> Self` setters of the
//! crate's settings structs, written once.
//!
//! The settings structs are `#[non_exhaustive]`, so a user builds one from its `Default`
//! and these setters rather than with a struct literal. Each setter converts its value
//! with `Into` (a `T` becomes `Some(T)` for an `Option<T>` field). It knows nothing of
//! what the fields mean.

/// Writes, for each `setter => field: Type`, a documented `#[must_use]` method
/// `setter(self, value: Type) -> Self` that sets `field` to `value.into()`.
macro_rules! with_setters {
    ($ty:ty { $($setter:ident => $field:ident: $value:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!(
                    "Sets [`", stringify!($field), "`](Self::", stringify!($field), ")."
                )]
                #[must_use]
                #[allow(clippy::useless_conversion)] // `T` into a `T` field is the identity
                pub fn $setter(mut self, value: $value) -> Self {
                    self.$field = value.into();
                    self
                }
            )*
        }
    };
}

pub(crate) use with_setters;
