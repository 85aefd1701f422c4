fn main() {
    for s in std::env::args().skip(1) {
        let st = clawpatrol_protocols::clickhouse::analyze_clickhouse(&s);
        println!(
            "{:?} verb={:?} t={:?} f={:?} u={}",
            st.statement, st.verb, st.tables, st.functions, st.unparseable
        );
    }
}
