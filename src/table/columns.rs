//! A table's columns filled from its rows a block at a time. Filling one whole column after
//! another read every row's record from memory once per column (a connections row has 28
//! columns, its record four cache lines, the rows in time order scattered over hundreds of
//! MB); a block of rows stays in cache while every column takes its values from it.

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use polars::prelude::*;

use crate::fastmap::FastMap;
use crate::flow::TupleKey;

/// Rows per block: their records (a few hundred bytes each) fit in a core's L2 cache.
const BLOCK_ROWS: usize = 1024;

/// One column being filled.
trait Fill<R> {
    fn extend(&mut self, rows: &[R]);
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
            datetime: false,
            _row: PhantomData,
        };
        self.with(values)
    }

    /// A UTC timestamp column (nanoseconds) from optional epoch nanoseconds.
    pub fn times(self, name: &str, value: impl Fn(&R) -> Option<i64> + 'a) -> Self {
        let values = Values::<_, _, [Option<i64>]> {
            name: name.into(),
            values: Vec::with_capacity(self.rows.len()),
            value,
            datetime: true,
            _row: PhantomData,
        };
        self.with(values)
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

    /// An address column. A capture holds few distinct addresses and tables a row per
    /// connection or SYN: each address is written out once.
    pub fn addrs(self, name: &str, addr: impl Fn(&R) -> IpAddr + 'a) -> Self {
        let builder = StringChunkedBuilder::new(name.into(), self.rows.len());
        self.with(Addrs {
            builder,
            addr,
            texts: FastMap::default(),
        })
    }

    /// The four tuple columns and the address family, shared by every table keyed by a tuple.
    pub fn tuple(self, tuple: impl Fn(&R) -> TupleKey + Copy + 'a) -> Self {
        self.addrs("client_addr", move |r| tuple(r).client.ip())
            .values("client_port", move |r| u32::from(tuple(r).client.port()))
            .addrs("server_addr", move |r| tuple(r).server.ip())
            .values("server_port", move |r| u32::from(tuple(r).server.port()))
            .values("family", move |r| family(&tuple(r).client))
    }

    pub fn build(mut self) -> PolarsResult<DataFrame> {
        for block in self.rows.chunks(BLOCK_ROWS) {
            for column in &mut self.columns {
                column.extend(block);
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

pub fn family(addr: &SocketAddr) -> &'static str {
    if addr.is_ipv4() { "ipv4" } else { "ipv6" }
}

/// Plain values; `P` is the slice type polars builds the column from.
struct Values<T, F, P: ?Sized> {
    name: PlSmallStr,
    values: Vec<T>,
    value: F,
    /// Optional epoch nanoseconds to show as UTC timestamps.
    datetime: bool,
    _row: PhantomData<P>,
}

impl<R, T, F, P: ?Sized> Fill<R> for Values<T, F, P>
where
    F: Fn(&R) -> T,
    Series: NamedFrom<Vec<T>, P>,
{
    fn extend(&mut self, rows: &[R]) {
        self.values.extend(rows.iter().map(&self.value));
    }

    fn finish(self: Box<Self>) -> PolarsResult<Column> {
        let column = Column::new(self.name, self.values);
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
    fn extend(&mut self, rows: &[R]) {
        for row in rows {
            self.buffer.clear();
            (self.write)(row, &mut self.buffer);
            self.builder.append_value(&self.buffer);
        }
    }

    fn finish(self: Box<Self>) -> PolarsResult<Column> {
        Ok(self.builder.finish().into_column())
    }
}

struct Addrs<F> {
    builder: StringChunkedBuilder,
    addr: F,
    texts: FastMap<IpAddr, String>,
}

impl<R, F: Fn(&R) -> IpAddr> Fill<R> for Addrs<F> {
    fn extend(&mut self, rows: &[R]) {
        for row in rows {
            let addr = (self.addr)(row);
            let text = self.texts.entry(addr).or_insert_with(|| addr.to_string());
            self.builder.append_value(text);
        }
    }

    fn finish(self: Box<Self>) -> PolarsResult<Column> {
        Ok(self.builder.finish().into_column())
    }
}
