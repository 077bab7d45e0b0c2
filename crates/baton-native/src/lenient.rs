//! Lenient, borrowing serde helpers for the readers' targeted structs.
//!
//! Native formats drift: a field that is a string today may be an object
//! tomorrow. Every wrapper here accepts any JSON value and keeps it only when
//! it has the expected shape, so one unexpected field never makes a whole line
//! unreadable. Strings borrow from the line when they contain no escapes.

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// Implements the "anything else" visitor methods as `Ok(default)`, draining
/// maps and sequences; `scalars` is every non-string scalar, `absent` is
/// `null` (an `Option`'s `Some` is read through).
macro_rules! ignore_other {
    (map) => {
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Default::default())
        }
    };
    (seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
            while s.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Default::default())
        }
    };
    (str) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (bool) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (u64) => {
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (i64) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (f64) => {
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (absent) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    };
    (scalars) => {
        ignore_other!(bool);
        ignore_other!(u64);
        ignore_other!(i64);
        ignore_other!(f64);
        ignore_other!(absent);
    };
}

/// Defines a lenient wrapper around a `Copy` scalar: each listed visitor
/// method maps its value to the wrapped value, and every JSON type named in
/// `ignore` reads as the default.
macro_rules! lenient_scalar {
    (
        $(#[$doc:meta])*
        $name:ident($inner:ty) {
            $($visit:ident($v:ident: $t:ty) => $body:expr),+ $(,)?
        }
        ignore [$($other:tt)+]
    ) => {
        $(#[$doc])*
        #[derive(Debug, Default, Clone, Copy, PartialEq)]
        pub(crate) struct $name(pub $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("any JSON value")
                    }
                    $(
                        fn $visit<E: de::Error>(self, $v: $t) -> Result<Self::Value, E> {
                            Ok($name($body))
                        }
                    )+
                    $(ignore_other!($other);)+
                }
                d.deserialize_any(V)
            }
        }
    };
}

/// A string field; any other JSON type reads as `None`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct LStr<'a>(pub Option<Cow<'a, str>>);

impl<'a> LStr<'a> {
    /// The string, if present.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = LStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LStr(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(LStr(Some(Cow::Owned(v))))
            }
            ignore_other!(map);
            ignore_other!(seq);
            ignore_other!(scalars);
        }
        d.deserialize_any(V(PhantomData))
    }
}

lenient_scalar! {
    /// A non-negative integer field; any other JSON type reads as `None`.
    LU64(Option<u64>) {
        visit_u64(v: u64) => Some(v),
        visit_i64(v: i64) => u64::try_from(v).ok(),
    }
    ignore [str map seq bool f64 absent]
}

lenient_scalar! {
    /// A boolean field; any other JSON type reads as `false`.
    LBool(bool) {
        visit_bool(v: bool) => v,
    }
    ignore [str map seq u64 i64 f64 absent]
}

/// An object field read into `T`; any other JSON type reads as `None`.
/// `T` should itself use lenient fields so that its contents never fail.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LMap<T>(pub Option<T>);

impl<T> Default for LMap<T> {
    fn default() -> Self {
        LMap(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for LMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = LMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(m)).map(|t| LMap(Some(t)))
            }
            ignore_other!(str);
            ignore_other!(seq);
            ignore_other!(scalars);
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An array field whose elements are read as `T` (itself lenient); any
/// other JSON type reads as empty.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LSeq<T>(pub Vec<T>);

impl<T> Default for LSeq<T> {
    fn default() -> Self {
        LSeq(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for LSeq<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = LSeq<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(t) = s.next_element::<T>()? {
                    out.push(t);
                }
                Ok(LSeq(out))
            }
            ignore_other!(str);
            ignore_other!(map);
            ignore_other!(scalars);
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OTHERS: [&str; 8] = [
        r#""7""#,
        r#"{"a":[1,{"b":2}]}"#,
        r#"[1,"x",{}]"#,
        "true",
        "-3",
        "1.5",
        "null",
        "18446744073709551615",
    ];

    fn parse<'a, T: Deserialize<'a>>(json: &'a str) -> T {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn scalars_keep_their_own_type_and_default_on_any_other() {
        let u64s: Vec<LU64> = OTHERS.iter().map(|j| parse(j)).collect();
        let want = [None, None, None, None, None, None, None, Some(u64::MAX)];
        assert_eq!(u64s, want.map(LU64));
        assert_eq!(parse::<LU64>("42"), LU64(Some(42)));
        let bools: Vec<LBool> = OTHERS.iter().map(|j| parse(j)).collect();
        let want = [false, false, false, true, false, false, false, false];
        assert_eq!(bools, want.map(LBool));
        assert_eq!(parse::<LBool>("false"), LBool(false));
    }

    #[test]
    fn wrappers_read_inside_objects_and_options() {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Line<'a> {
            #[serde(borrow)]
            s: LStr<'a>,
            n: LU64,
            b: LBool,
            m: LMap<Inner>,
            q: LSeq<LU64>,
            o: Option<LU64>,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Inner {
            n: LU64,
        }
        let l: Line = parse(r#"{"s":"hi","n":3,"b":true,"m":{"n":"x"},"q":[1,"a",2],"o":5}"#);
        assert_eq!(l.s.get(), Some("hi"));
        assert!(matches!(l.s.0, Some(Cow::Borrowed(_))));
        assert_eq!((l.n, l.b), (LU64(Some(3)), LBool(true)));
        assert_eq!(l.m.0.map(|i| i.n), Some(LU64(None)));
        assert_eq!(l.q.0, [LU64(Some(1)), LU64(None), LU64(Some(2))]);
        assert_eq!(l.o, Some(LU64(Some(5))));
        let l: Line = parse(r#"{"s":{"x":1},"n":[],"b":"yes","m":4,"q":{},"o":null}"#);
        assert_eq!((l.s.get(), l.n, l.b), (None, LU64(None), LBool(false)));
        assert!(l.m.0.is_none() && l.q.0.is_empty() && l.o.is_none());
    }
}
