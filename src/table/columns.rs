//! A table's columns filled from its rows a block at a time. Filling one whole column after
//! another read every row's record from memory once per column (a connections row has 28
//! columns, its record four cache lines, the rows in time order scattered over hundreds of
//! MB); a block of rows stays in cache while every column takes its values from it.

use std::fmt::Write;
use std::hash::Hash;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use polars::prelude::*;

use crate::fastmap::FastMap;
use crate::flow::TupleKey;

/// Rows per block: their records (a few hundred bytes each) fit in a core's L2 cache.
const BLOCK_ROWS: usize = 1024;

/// One column being filled.
trait Fill<R> {
    fn extend(&mut self, rows: &[R]) -> PolarsResult<()>;
    fn finish(self: Box<Self>) -> PolarsResult<Column>;
}

/// The columns of a table over `rows`, added in order, built by [`Frame::build`].
pub struct Frame<'a, R> {
    rows: &'a [R],
    columns: Vec<Box<dyn Fill<R> + 'a>>,
}

impl<'a, R: 'a> Frame<'a, R> {
    pub fn over(rows: &'a [R]) -> Self {
        Frame {
            rows,
            columns: Vec::new(),
        }
    }

    fn with(mut self, column: impl Fill<R> + 'a) -> Self {
        self.columns.push(Box::new(column));
        self
    }

    /// A column holding `value(row)` for every row.
    pub fn values<T: 'a, P: ?Sized + 'a>(self, name: &str, value: impl Fn(&R) -> T + 'a) -> Self
    where
        Series: NamedFrom<Vec<T>, P>,
    {
        let values = Values::<_, _, P> {
            name: name.into(),
            values: Vec::with_capacity(self.rows.len()),
            value,
            _row: PhantomData,
        };
        self.with(values)
    }

    /// A column of optional numbers: null where `value` gives none.
    pub fn optional<T>(self, name: &str, value: impl Fn(&R) -> Option<T> + 'a) -> Self
    where
        T: NumericNative + 'a,
        T::PolarsType: PolarsNumericType<Native = T>,
    {
        let rows = self.rows.len();
        self.with(Optional::new(name, value, rows, false))
    }

    /// A UTC timestamp column (nanoseconds) from optional epoch nanoseconds.
    pub fn times(self, name: &str, value: impl Fn(&R) -> Option<i64> + 'a) -> Self {
        let rows = self.rows.len();
        self.with(Optional::new(name, value, rows, true))
    }

    /// A text column, each row written by `write` into one reused buffer: no String per row.
    pub fn text(self, name: &str, write: impl Fn(&R, &mut String) + 'a) -> Self {
        let builder = StringChunkedBuilder::new(name.into(), self.rows.len());
        self.with(Text {
            builder,
            write,
            buffer: String::new(),
        })
    }

    /// A categorical column of labels: `key(row)` names the row's label (`None`: null) and
    /// `write` writes a key's text, once per distinct key. Tables hold a row per connection
    /// or SYN but few distinct addresses or reasons: a column of strings copied every label
    /// into every row, and Parquet then hashed each row's string back into a dictionary.
    /// The column holds a number per row in the categories named `set`, which every column
    /// of labels of that kind shares (every address column, in every table): columns of
    /// two tables join, and two builds of a table are equal. Parquet writes the labels a
    /// column holds in the order its rows first show them, whatever numbers they had.
    /// Categorical, not Enum: comparing it with a text it lacks finds nothing.
    pub fn labels<K: Hash + Eq + Copy + 'a>(
        self,
        name: &str,
        set: &'static str,
        key: impl Fn(&R) -> Option<K> + 'a,
        write: impl Fn(&K, &mut String) + 'a,
    ) -> Self {
        let labels = Labels::new(name, set, None, key, write, self.rows.len());
        self.with(labels)
    }

    /// An Enum column of words from a fixed `vocabulary` (a verdict, a state), in its
    /// order: `word(row)` is the row's word. Every word of the vocabulary is a category
    /// whether the rows hold it or not, so a filter on any of them works on any capture.
    /// Words are told apart by where they are kept, which is the same for every row a match
    /// arm names; a word met at a second place is looked up by its text.
    pub fn words(
        self,
        name: &str,
        vocabulary: &'static [&'static str],
        word: impl Fn(&R) -> Option<&'static str> + 'a,
    ) -> Self {
        let labels = Labels::new(
            name,
            "",
            Some(vocabulary),
            move |row: &R| word(row).map(StaticWord),
            |word: &StaticWord, text: &mut String| text.push_str(word.0),
            self.rows.len(),
        );
        self.with(labels)
    }

    /// An address column.
    pub fn addrs(self, name: &str, addr: impl Fn(&R) -> IpAddr + 'a) -> Self {
        self.labels(
            name,
            "address",
            move |row| Some(addr(row)),
            |addr, text| {
                // Writing into a String cannot fail.
                let _ = write!(text, "{addr}");
            },
        )
    }

    /// The four tuple columns and the address family, shared by every table keyed by a tuple.
    pub fn tuple(self, tuple: impl Fn(&R) -> TupleKey + Copy + 'a) -> Self {
        self.addrs("client_addr", move |r| tuple(r).client.ip())
            .values("client_port", move |r| u32::from(tuple(r).client.port()))
            .addrs("server_addr", move |r| tuple(r).server.ip())
            .values("server_port", move |r| u32::from(tuple(r).server.port()))
            .words("family", &FAMILIES, move |r| Some(family(&tuple(r).client)))
    }

    pub fn build(mut self) -> PolarsResult<DataFrame> {
        for block in self.rows.chunks(BLOCK_ROWS) {
            for column in &mut self.columns {
                column.extend(block)?;
            }
        }
        let columns = self
            .columns
            .into_iter()
            .map(|column| column.finish())
            .collect::<PolarsResult<Vec<Column>>>()?;
        DataFrame::new(self.rows.len(), columns)
    }
}

/// The words of a `family` column.
pub const FAMILIES: [&str; 2] = ["ipv4", "ipv6"];

pub fn family(addr: &SocketAddr) -> &'static str {
    if addr.is_ipv4() { "ipv4" } else { "ipv6" }
}

/// Plain values; `P` is the slice type polars builds the column from.
struct Values<T, F, P: ?Sized> {
    name: PlSmallStr,
    values: Vec<T>,
    value: F,
    _row: PhantomData<P>,
}

impl<R, T, F, P: ?Sized> Fill<R> for Values<T, F, P>
where
    F: Fn(&R) -> T,
    Series: NamedFrom<Vec<T>, P>,
{
    fn extend(&mut self, rows: &[R]) -> PolarsResult<()> {
        self.values.extend(rows.iter().map(&self.value));
        Ok(())
    }

    fn finish(self: Box<Self>) -> PolarsResult<Column> {
        Ok(Column::new(self.name, self.values))
    }
}

/// Optional numbers kept as the numbers (zero where there is none) and whether each is
/// there: polars takes both as they are, where it rebuilt a vector of options value by value
/// (and the options took twice the room of the numbers).
struct Optional<T, F> {
    name: PlSmallStr,
    numbers: Vec<T>,
    present: Vec<bool>,
    any_absent: bool,
    value: F,
    /// Epoch nanoseconds to show as UTC timestamps.
    datetime: bool,
}

impl<T, F> Optional<T, F> {
    fn new(name: &str, value: F, rows: usize, datetime: bool) -> Self {
        Optional {
            name: name.into(),
            numbers: Vec::with_capacity(rows),
            present: Vec::with_capacity(rows),
            any_absent: false,
            value,
            datetime,
        }
    }
}

impl<R, T, F> Fill<R> for Optional<T, F>
where
    T: NumericNative,
    T::PolarsType: PolarsNumericType<Native = T>,
    F: Fn(&R) -> Option<T>,
{
    fn extend(&mut self, rows: &[R]) -> PolarsResult<()> {
        for row in rows {
            let value = (self.value)(row);
            self.any_absent |= value.is_none();
            self.present.push(value.is_some());
            self.numbers.push(value.unwrap_or_default());
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> PolarsResult<Column> {
        let validity = (self.any_absent).then(|| self.present.iter().copied().collect());
        let numbers =
            ChunkedArray::<T::PolarsType>::from_vec_validity(self.name, self.numbers, validity);
        let column = numbers.into_series().into_column();
        if self.datetime {
            column.cast(&DataType::Datetime(TimeUnit::Nanoseconds, None))
        } else {
            Ok(column)
        }
    }
}

struct Text<F> {
    builder: StringChunkedBuilder,
    write: F,
    buffer: String,
}

impl<R, F: Fn(&R, &mut String)> Fill<R> for Text<F> {
    fn extend(&mut self, rows: &[R]) -> PolarsResult<()> {
        for row in rows {
            self.buffer.clear();
            (self.write)(row, &mut self.buffer);
            self.builder.append_value(&self.buffer);
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> PolarsResult<Column> {
        Ok(self.builder.finish().into_column())
    }
}

/// A `&'static str` compared and hashed by its address and length, not its bytes.
#[derive(Clone, Copy)]
struct StaticWord(&'static str);

impl PartialEq for StaticWord {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for StaticWord {}

impl Hash for StaticWord {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(self.0, state);
    }
}

struct Labels<K, F, W> {
    name: PlSmallStr,
    /// The name of a categorical column's categories.
    set: &'static str,
    key: F,
    write: W,
    /// The words of an Enum column; `None`: a categorical one of the labels present.
    vocabulary: Option<&'static [&'static str]>,
    /// Each row's label, [`NULL_LABEL`] for a null.
    codes: Vec<u32>,
    null_rows: bool,
    /// The last row's key and label: neighbouring rows often share one.
    last: Option<(K, u32)>,
    /// The label of each key seen so far.
    known: FastMap<K, u32>,
    /// Each label's text: two keys may share one (a word kept in two places).
    texts: FastMap<String, u32>,
}

/// Where the categories of categorical columns are registered.
const CATEGORIES_NAMESPACE: &str = "pawscope";

/// A null row's label while the column is filled: a table would need more rows than it can
/// hold to have this many labels.
const NULL_LABEL: u32 = u32::MAX;

impl<K, F, W> Labels<K, F, W>
where
    K: Hash + Eq + Copy,
    W: Fn(&K, &mut String),
{
    fn new(
        name: &str,
        set: &'static str,
        vocabulary: Option<&'static [&'static str]>,
        key: F,
        write: W,
        rows: usize,
    ) -> Self {
        Labels {
            name: name.into(),
            set,
            key,
            write,
            vocabulary,
            codes: Vec::with_capacity(rows),
            null_rows: false,
            last: None,
            known: FastMap::default(),
            texts: FastMap::default(),
        }
    }

    fn label(&mut self, key: K) -> PolarsResult<u32> {
        if let Some((last, code)) = self.last
            && last == key
        {
            return Ok(code);
        }
        let code = match self.known.get(&key) {
            Some(&code) => code,
            None => {
                let mut text = String::new();
                (self.write)(&key, &mut text);
                let code = match self.vocabulary {
                    Some(words) => match words.iter().position(|word| *word == text) {
                        Some(at) => at as u32,
                        None => polars_bail!(
                            ComputeError: "column {}: '{text}' is not one of its words", self.name
                        ),
                    },
                    None => {
                        let next = self.texts.len() as u32;
                        *self.texts.entry(text).or_insert(next)
                    }
                };
                self.known.insert(key, code);
                code
            }
        };
        self.last = Some((key, code));
        Ok(code)
    }
}

impl<R, K, F, W> Fill<R> for Labels<K, F, W>
where
    K: Hash + Eq + Copy,
    F: Fn(&R) -> Option<K>,
    W: Fn(&K, &mut String),
{
    fn extend(&mut self, rows: &[R]) -> PolarsResult<()> {
        for row in rows {
            let code = match (self.key)(row) {
                Some(key) => self.label(key)?,
                None => {
                    self.null_rows = true;
                    NULL_LABEL
                }
            };
            self.codes.push(code);
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> PolarsResult<Column> {
        let (name, mut codes, null_rows) = (self.name, self.codes, self.null_rows);
        let (dtype, physical) = match self.vocabulary {
            Some(words) => {
                let categories = FrozenCategories::new(words.iter().copied())?;
                let physical = categories.physical();
                (DataType::from_frozen_categories(categories), physical)
            }
            None => {
                let categories = Categories::new(
                    self.set.into(),
                    CATEGORIES_NAMESPACE.into(),
                    CategoricalPhysical::U32,
                );
                let mapping = categories.mapping();
                // Each label's number in the shared categories, by the number it had here.
                let mut numbers = vec![0; self.texts.len()];
                for (text, code) in &self.texts {
                    numbers[*code as usize] = mapping.insert_cat(text)?;
                }
                for code in codes.iter_mut().filter(|c| **c != NULL_LABEL) {
                    *code = numbers[*code as usize];
                }
                (
                    DataType::from_categories(categories),
                    CategoricalPhysical::U32,
                )
            }
        };
        // The codes as wide as the categories ask (u8 up to 255 words).
        macro_rules! categorical_column {
            ($codes:ty, $chunked:ty) => {{
                let codes = if null_rows {
                    let code = |c: &u32| (*c != NULL_LABEL).then_some(*c as _);
                    <$codes>::from_iter_options(name, codes.iter().map(code))
                } else {
                    <$codes>::from_vec(name, codes.iter().map(|c| *c as _).collect())
                };
                // SAFETY: every code is the number of a text the categories hold.
                unsafe { <$chunked>::from_cats_and_dtype_unchecked(codes, dtype) }
                    .into_series()
                    .into_column()
            }};
        }
        Ok(match physical {
            CategoricalPhysical::U8 => categorical_column!(UInt8Chunked, Categorical8Chunked),
            CategoricalPhysical::U16 => categorical_column!(UInt16Chunked, Categorical16Chunked),
            CategoricalPhysical::U32 => categorical_column!(UInt32Chunked, Categorical32Chunked),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(column: &Column) -> Vec<Option<String>> {
        let column = column.cast(&DataType::String).unwrap();
        let texts = column.str().unwrap().iter();
        texts.map(|t| t.map(str::to_string)).collect()
    }

    #[test]
    fn words_are_enums_of_their_whole_vocabulary_and_labels_categories_of_those_present() {
        // "b" is kept in two places: compared by address they are two keys, one word.
        let b_elsewhere: &'static str = Box::leak(String::from("b").into_boxed_str());
        let rows: Vec<Option<&'static str>> = vec![
            Some("b"),
            None,
            Some("a"),
            Some(b_elsewhere),
            Some("a"),
            Some("b"),
        ];
        let frame = Frame::over(&rows)
            .words("word", &["a", "b", "c"], |row| *row)
            .addrs("addr", |row| {
                IpAddr::from([192, 0, 2, row.map_or(0, |w| w.len() as u8 + 1)])
            })
            .build()
            .unwrap();
        let word = frame.column("word").unwrap();
        let DataType::Enum(categories, _) = word.dtype() else {
            panic!("{:?}", word.dtype());
        };
        let words: Vec<&str> = categories.categories().values_iter().collect();
        assert_eq!(words, ["a", "b", "c"]);
        let expected: Vec<Option<String>> = rows.iter().map(|r| r.map(str::to_string)).collect();
        assert_eq!(texts(word), expected);

        let addr = frame.column("addr").unwrap();
        let DataType::Categorical(categories, _) = addr.dtype() else {
            panic!("{:?}", addr.dtype());
        };
        assert_eq!(categories.name().as_str(), "address");
        let two = Some("192.0.2.2".to_string());
        let none = Some("192.0.2.0".to_string());
        assert_eq!(
            texts(addr),
            [
                two.clone(),
                none,
                two.clone(),
                two.clone(),
                two.clone(),
                two
            ]
        );
    }

    #[test]
    fn a_word_outside_its_vocabulary_is_an_error() {
        let rows = ["a", "d"];
        let built = Frame::over(&rows)
            .words("word", &["a", "b"], |row| Some(*row))
            .build();
        let error = built.unwrap_err().to_string();
        assert!(error.contains("'d' is not one of its words"), "{error}");
    }
}
