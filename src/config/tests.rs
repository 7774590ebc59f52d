use super::*;

const VALID: &str = r#"
listeners:
  - { name: public, address: "127.0.0.1:8080" }
upstreams:
  app:
    backends:
      - { address: "127.0.0.1:9001", weight: 3 }
      - { address: "127.0.0.1:9002" }
routes:
  - name: all
    upstream: app
"#;

fn problems_of(text: &str) -> Vec<Problem> {
    match parse(text, "test.yaml") {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(e) => e.problems().to_vec(),
    }
}

#[test]
fn a_minimal_file_parses_with_defaults() {
    let config = parse(VALID, "test.yaml").expect("valid");
    assert_eq!(config.server.threads, 1);
    assert_eq!(config.upstreams.len(), 1);
    assert_eq!(config.upstreams[0].1.backends[0].weight, 3);
    assert_eq!(config.hide_headers.len(), 2);
}

#[test]
fn every_problem_is_reported_at_once_with_path_and_line() {
    let text = r#"
listeners:
  - { name: public, address: "127.0.0.1:8080" }
  - { name: public, address: "127.0.0.1:8080" }
upstreams:
  app:
    backends: []
routes:
  - name: a
    upstream: nope
  - name: b
    upstream: app
    colour: blue
"#;
    let problems = problems_of(text);
    let find = |path: &str| {
        problems
            .iter()
            .find(|p| p.path == path)
            .unwrap_or_else(|| panic!("no problem at {path}: {problems:#?}"))
    };
    assert_eq!(find("listeners[1].name").line, Some(4));
    assert_eq!(find("listeners[1].address").line, Some(4));
    assert_eq!(find("upstreams.app.backends").line, Some(7));
    assert_eq!(find("routes[0].upstream").line, Some(10));
    assert_eq!(find("routes[1].colour").line, Some(13));
    assert_eq!(problems.len(), 5, "{problems:#?}");
}

#[test]
fn dangling_upstream_names_the_known_ones() {
    let text = VALID.replace("upstream: app", "upstream: ap");
    let problems = problems_of(&text);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, "routes[0].upstream");
    assert_eq!(problems[0].line, Some(11));
    assert!(problems[0].message.contains("defined: app"), "{problems:?}");
}

#[test]
fn yaml_syntax_errors_have_a_line() {
    let problems = problems_of("listeners: [\n  - a\nroutes: {\n");
    assert_eq!(problems.len(), 1);
    assert!(problems[0].line.is_some());
}

#[test]
fn unknown_top_level_keys_list_the_known_ones() {
    let text = format!("{VALID}\nlisteners2: []\n");
    let problems = problems_of(&text);
    assert_eq!(problems[0].path, "listeners2");
    assert!(problems[0].message.contains("expected one of"));
}

#[test]
fn a_wildcard_listener_overlaps_a_specific_one_on_the_same_port() {
    let text = VALID.replace(
        "  - { name: public, address: \"127.0.0.1:8080\" }",
        "  - { name: public, address: \"127.0.0.1:8080\" }\n  - { name: all, address: \"0.0.0.0:8080\" }\n  - { name: other, address: \"0.0.0.0:8081\" }",
    );
    let problems = problems_of(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].path, "listeners[1].address");
    assert!(problems[0].message.contains("overlaps"));
}
