fn main() {
    std::process::exit(drill::cli::main());
}
