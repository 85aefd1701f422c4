//! A complete walk of a `pg_query` parse tree that collects relation references and
//! function calls.
//!
//! The parse tree's protobuf types implement `serde::Serialize`, so this walker is a
//! `serde::Serializer` that allocates nothing but the names it collects: every node type is
//! visited (no hand-written list of node kinds that could miss a new one), every `RangeVar` is
//! a relation reference and every `FuncCall` a function call.

use serde::ser::{self, Serialize};

/// Relation and function names collected from a tree (unsorted, may repeat).
#[derive(Debug, Default)]
pub(crate) struct Refs {
    /// Relation names: `schema.rel` and `rel`, or `rel`.
    pub tables: Vec<String>,
    /// Function names: the dotted name lower-cased, and its last part when qualified.
    pub functions: Vec<String>,
}

impl Refs {
    /// Adds a relation reference (catalog prefix ignored).
    pub fn add_table(&mut self, schema: &str, rel: &str) {
        if rel.is_empty() {
            return;
        }
        if !schema.is_empty() {
            self.tables.push(format!("{schema}.{rel}"));
        }
        self.tables.push(rel.to_string());
    }

    /// Adds a relation given by name parts (`[catalog.][schema.]rel`).
    pub fn add_table_parts(&mut self, parts: &[String]) {
        match parts {
            [] => {}
            [rel] => self.add_table("", rel),
            [.., schema, rel] => self.add_table(schema, rel),
        }
    }

    /// Adds a function call given as its dotted name and its last part (same rules as
    /// [`Refs::add_function`]).
    pub fn add_function_names(&mut self, dotted: &str, last: &str) {
        if dotted.is_empty() {
            return;
        }
        if dotted.len() > last.len() {
            self.functions.push(last.to_lowercase());
        }
        self.functions.push(dotted.to_lowercase());
    }

    /// Adds a function call given by its name parts.
    pub fn add_function(&mut self, parts: &[String]) {
        if parts.is_empty() {
            return;
        }
        let full = parts.join(".").to_lowercase();
        if parts.len() > 1 {
            if let Some(last) = parts.last() {
                self.functions.push(last.to_lowercase());
            }
        }
        self.functions.push(full);
    }
}

/// Collects the relation and function names of any serialisable parse-tree value.
pub(crate) fn collect<T: Serialize + ?Sized>(value: &T, refs: &mut Refs) {
    let mut w = Walker {
        refs,
        capturing: false,
        captured: Vec::new(),
    };
    // The walker never fails; an error could only come from a foreign Serialize impl.
    let _ = value.serialize(&mut w);
}

struct Walker<'r> {
    refs: &'r mut Refs,
    capturing: bool,
    captured: Vec<String>,
}

impl Walker<'_> {
    /// Serialises `value` and returns every string it contains.
    fn capture<T: Serialize + ?Sized>(&mut self, value: &T) -> Vec<String> {
        let was = std::mem::replace(&mut self.capturing, true);
        let saved = std::mem::take(&mut self.captured);
        let _ = value.serialize(&mut *self);
        self.capturing = was;
        std::mem::replace(&mut self.captured, saved)
    }
}

/// The (never produced) error of the walker.
#[derive(Debug)]
pub(crate) struct WalkError;

impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("parse tree walk failed")
    }
}

impl std::error::Error for WalkError {}

impl ser::Error for WalkError {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        WalkError
    }
}

type R = Result<(), WalkError>;

impl<'a, 'r> ser::Serializer for &'a mut Walker<'r> {
    type Ok = ();
    type Error = WalkError;
    type SerializeSeq = Pass<'a, 'r>;
    type SerializeTuple = Pass<'a, 'r>;
    type SerializeTupleStruct = Pass<'a, 'r>;
    type SerializeTupleVariant = Pass<'a, 'r>;
    type SerializeMap = Pass<'a, 'r>;
    type SerializeStruct = StructWalk<'a, 'r>;
    type SerializeStructVariant = Pass<'a, 'r>;

    fn serialize_bool(self, _: bool) -> R {
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> R {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> R {
        Ok(())
    }
    fn serialize_i32(self, _: i32) -> R {
        Ok(())
    }
    fn serialize_i64(self, _: i64) -> R {
        Ok(())
    }
    fn serialize_u8(self, _: u8) -> R {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> R {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> R {
        Ok(())
    }
    fn serialize_u64(self, _: u64) -> R {
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> R {
        Ok(())
    }
    fn serialize_f64(self, _: f64) -> R {
        Ok(())
    }
    fn serialize_char(self, _: char) -> R {
        Ok(())
    }
    fn serialize_str(self, v: &str) -> R {
        if self.capturing {
            self.captured.push(v.to_string());
        }
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> R {
        Ok(())
    }
    fn serialize_none(self) -> R {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> R {
        value.serialize(self)
    }
    fn serialize_unit(self) -> R {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> R {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> R {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> R {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> R {
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Pass<'a, 'r>, WalkError> {
        Ok(Pass(self))
    }
    fn serialize_tuple(self, _: usize) -> Result<Pass<'a, 'r>, WalkError> {
        Ok(Pass(self))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Pass<'a, 'r>, WalkError> {
        Ok(Pass(self))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Pass<'a, 'r>, WalkError> {
        Ok(Pass(self))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Pass<'a, 'r>, WalkError> {
        Ok(Pass(self))
    }
    fn serialize_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<StructWalk<'a, 'r>, WalkError> {
        let kind = match name {
            "RangeVar" if !self.capturing => Kind::RangeVar,
            "FuncCall" if !self.capturing => Kind::FuncCall,
            "ColumnRef" if !self.capturing => Kind::ColumnRef,
            "LockingClause" => Kind::LockingClause,
            "RangeTableFuncCol" => Kind::TableFuncColumn,
            "IndexElem" => Kind::IndexElem,
            _ => Kind::Other,
        };
        Ok(StructWalk {
            w: self,
            kind,
            schema: Vec::new(),
            rel: Vec::new(),
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Pass<'a, 'r>, WalkError> {
        Ok(Pass(self))
    }
}

/// Serialises every element of a compound value with the walker.
pub(crate) struct Pass<'a, 'r>(&'a mut Walker<'r>);

impl ser::SerializeSeq for Pass<'_, '_> {
    type Ok = ();
    type Error = WalkError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
        value.serialize(&mut *self.0)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeTuple for Pass<'_, '_> {
    type Ok = ();
    type Error = WalkError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
        value.serialize(&mut *self.0)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Pass<'_, '_> {
    type Ok = ();
    type Error = WalkError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
        value.serialize(&mut *self.0)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Pass<'_, '_> {
    type Ok = ();
    type Error = WalkError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
        value.serialize(&mut *self.0)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeMap for Pass<'_, '_> {
    type Ok = ();
    type Error = WalkError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, _key: &T) -> R {
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
        value.serialize(&mut *self.0)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Pass<'_, '_> {
    type Ok = ();
    type Error = WalkError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, value: &T) -> R {
        value.serialize(&mut *self.0)
    }
    fn end(self) -> R {
        Ok(())
    }
}

enum Kind {
    RangeVar,
    FuncCall,
    /// `x.name`: when `name` is not a column of `x`, PostgreSQL calls `name(x)` (attribute
    /// notation), so the last part of a qualified column reference counts as a function.
    ColumnRef,
    /// `FOR UPDATE OF x`: `x` names an item of the FROM list (often an alias), which the
    /// walk has already counted; it is not a relation reference of its own.
    LockingClause,
    /// An XMLTABLE column: its type's modifiers must be constants or identifiers, so a
    /// subquery or call written there is rejected before anything runs (and libpg_query's
    /// raw-tree walker, which the summary fast path uses, does not look there).
    TableFuncColumn,
    /// An index column (`ON CONFLICT (a text_ops (…))`): operator-class options are constant
    /// definitions, never evaluated as expressions (nor walked by libpg_query).
    IndexElem,
    Other,
}

/// Walks one struct; `RangeVar`, `FuncCall` and `ColumnRef` capture their name fields.
pub(crate) struct StructWalk<'a, 'r> {
    w: &'a mut Walker<'r>,
    kind: Kind,
    schema: Vec<String>,
    rel: Vec<String>,
}

impl ser::SerializeStruct for StructWalk<'_, '_> {
    type Ok = ();
    type Error = WalkError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> R {
        match (&self.kind, key) {
            (Kind::RangeVar, "schemaname") => self.schema = self.w.capture(value),
            (Kind::RangeVar, "relname")
            | (Kind::FuncCall, "funcname")
            | (Kind::ColumnRef, "fields") => self.rel = self.w.capture(value),
            (Kind::LockingClause, "locked_rels")
            | (Kind::TableFuncColumn, "type_name")
            | (Kind::IndexElem, "opclassopts") => {}
            _ => value.serialize(&mut *self.w)?,
        }
        Ok(())
    }
    fn end(self) -> R {
        match self.kind {
            Kind::RangeVar => {
                let schema = self.schema.first().map_or("", String::as_str);
                let rel = self.rel.first().map_or("", String::as_str);
                self.w.refs.add_table(schema, rel);
            }
            Kind::FuncCall => self.w.refs.add_function(&self.rel),
            Kind::ColumnRef => {
                if let [_, .., last] = self.rel.as_slice() {
                    self.w.refs.add_function(std::slice::from_ref(last));
                }
            }
            Kind::LockingClause | Kind::TableFuncColumn | Kind::IndexElem | Kind::Other => {}
        }
        Ok(())
    }
}
