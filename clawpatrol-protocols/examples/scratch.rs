fn main() {
    for s in std::env::args().skip(1) {
        for st in clawpatrol_protocols::sql::analyze_postgres(&s) {
            println!(
                "{:?} verb={:?} t={:?} f={:?} u={} sh={}",
                st.statement, st.verb, st.tables, st.functions, st.unparseable, st.shadow
            );
        }
        println!("--");
    }
}
