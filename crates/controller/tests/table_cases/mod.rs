//! The cases, grouped by rule.

use super::*;

mod more;
use more::*;

pub fn cases() -> Vec<Case> {
    let mut c = Vec::new();
    basics(&mut c);
    requests(&mut c);
    sharing(&mut c);
    dual_stack(&mut c);
    pinning(&mut c);
    config_changes(&mut c);
    lifecycle(&mut c);
    restart(&mut c);
    events_and_counters(&mut c);
    c
}

fn basics(c: &mut Vec<Case>) {
    c.push(
        case("lowest address first, .0 included", v4pool())
            .sync(vec![svc("a")])
            .expect(
                "default/a",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            )
            .counters("p", [1, 0, 3, 0]),
    );
    c.push(
        case("key order, not input order", v4pool())
            .sync(vec![svc("b"), svc("a")])
            .expect(
                "default/a",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            )
            .expect(
                "default/b",
                &["10.0.0.1"],
                vec![allocated(r#"Assigned IP ["10.0.0.1"]"#)],
            ),
    );
    c.push(
        case(
            "avoidBuggyIPs skips .0",
            config(vec![pool("p", &["10.0.0.0/24"]).buggy()]),
        )
        .sync(vec![svc("a")])
        .expect(
            "default/a",
            &["10.0.0.1"],
            vec![allocated(r#"Assigned IP ["10.0.0.1"]"#)],
        )
        .counters("p", [1, 0, 253, 0]),
    );
    c.push(
        case(
            "avoidBuggyIPs skips .255 and .0 across a /24 boundary",
            config(vec![pool("p", &["10.0.0.254-10.0.1.1"]).buggy()]),
        )
        .sync(vec![svc("a"), svc("b"), svc("c")])
        .expect(
            "default/a",
            &["10.0.0.254"],
            vec![allocated(r#"Assigned IP ["10.0.0.254"]"#)],
        )
        .expect(
            "default/b",
            &["10.0.1.1"],
            vec![allocated(r#"Assigned IP ["10.0.1.1"]"#)],
        )
        .expect(
            "default/c",
            &[],
            vec![failed(
                r#"Failed to allocate IP for "default/c": no available IPs"#,
            )],
        )
        .counters("p", [2, 0, 0, 0]),
    );
    c.push(
        case("pool exhausted", v4pool())
            .sync(vec![svc("a"), svc("b"), svc("c"), svc("d"), svc("e")])
            .expect(
                "default/d",
                &["10.0.0.3"],
                vec![allocated(r#"Assigned IP ["10.0.0.3"]"#)],
            )
            .expect(
                "default/e",
                &[],
                vec![failed(
                    r#"Failed to allocate IP for "default/e": no available IPs"#,
                )],
            )
            .counters("p", [4, 0, 0, 0]),
    );
    c.push(
        case(
            "autoAssign false is not used unasked",
            config(vec![pool("p", &["10.0.0.0/30"]).manual()]),
        )
        .sync(vec![svc("a")])
        .expect(
            "default/a",
            &[],
            vec![failed(
                r#"Failed to allocate IP for "default/a": no available IPs"#,
            )],
        ),
    );
    c.push(
        case(
            "autoAssign false pool via address-pool",
            config(vec![pool("p", &["10.0.0.0/30"]).manual()]),
        )
        .sync(vec![svc("a").in_pool("p")])
        .expect_pool(
            "default/a",
            &["10.0.0.0"],
            "p",
            vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
        ),
    );
    c.push(
        case(
            "deprecated address-pool honoured and warned",
            config(vec![pool("p", &["10.0.0.0/30"]).manual()]),
        )
        .sync(vec![svc("a").ann("metallb.universe.tf/address-pool", "p")])
        .expect(
            "default/a",
            &["10.0.0.0"],
            vec![
                allocated(r#"Assigned IP ["10.0.0.0"]"#),
                deprecated("Service uses deprecated annotation metallb.universe.tf/address-pool"),
            ],
        ),
    );
    c.push(
        case(
            "metallb.io address-pool wins over the deprecated one",
            two_pools(),
        )
        .sync(vec![
            svc("a")
                .in_pool("q")
                .ann("metallb.universe.tf/address-pool", "p"),
        ])
        .expect_pool(
            "default/a",
            &["10.0.1.0"],
            "q",
            vec![
                allocated(r#"Assigned IP ["10.0.1.0"]"#),
                deprecated("Service uses deprecated annotation metallb.universe.tf/address-pool"),
            ],
        ),
    );
    c.push(
        case("unknown address-pool", v4pool())
            .sync(vec![svc("a").in_pool("nope")])
            .expect(
                "default/a",
                &[],
                vec![failed(
                    r#"Failed to allocate IP for "default/a": unknown pool "nope""#,
                )],
            ),
    );
    c.push(
        case("address-pool full", config(vec![pool("p", &["10.0.0.0/32"])]))
            .sync(vec![svc("a").in_pool("p"), svc("b").in_pool("p")])
            .expect(
                "default/b",
                &[],
                vec![failed(
                    r#"Failed to allocate IP for "default/b": no available IPs in pool p for ipv4 IPFamily"#,
                )],
            ),
    );
    c.push(
        case(
            "autoAssign pools chosen by name",
            config(vec![
                pool("b", &["10.0.0.0/30"]),
                pool("a", &["10.0.1.0/30"]),
            ]),
        )
        .sync(vec![svc("x")])
        .expect_pool(
            "default/x",
            &["10.0.1.0"],
            "a",
            vec![allocated(r#"Assigned IP ["10.0.1.0"]"#)],
        ),
    );
    c.push(
        case(
            "next pool when the first is full",
            config(vec![
                pool("a", &["10.0.0.0/32"]),
                pool("b", &["10.0.1.0/30"]),
            ]),
        )
        .sync(vec![svc("s1"), svc("s2")])
        .expect_pool(
            "default/s1",
            &["10.0.0.0"],
            "a",
            vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
        )
        .expect_pool(
            "default/s2",
            &["10.0.1.0"],
            "b",
            vec![allocated(r#"Assigned IP ["10.0.1.0"]"#)],
        ),
    );
    c.push(
        case("IPv6 service", dualpool())
            .sync(vec![svc("a").v6()])
            .expect(
                "default/a",
                &["fc00::"],
                vec![allocated(r#"Assigned IP ["fc00::"]"#)],
            )
            .counters("p", [0, 1, 4, 3]),
    );
    c.push(
        case("IPv6 service, IPv4-only pools", v4pool())
            .sync(vec![svc("a").v6()])
            .expect(
                "default/a",
                &[],
                vec![failed(
                    r#"Failed to allocate IP for "default/a": no available IPs"#,
                )],
            ),
    );
    c.push(
        case("family from the cluster IP", dualpool())
            .sync(vec![svc("a").cluster_ips(&["fd00::10"])])
            .expect(
                "default/a",
                &["fc00::"],
                vec![allocated(r#"Assigned IP ["fc00::"]"#)],
            ),
    );
    c.push(
        case(
            "family from the requested IP (file without cluster IP)",
            dualpool(),
        )
        .sync(vec![svc("a").ips("fc00::2")])
        .expect(
            "default/a",
            &["fc00::2"],
            vec![allocated(r#"Assigned IP ["fc00::2"]"#)],
        ),
    );
    c.push(
        case("no family information means IPv4", dualpool())
            .sync(vec![svc("a")])
            .expect(
                "default/a",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            ),
    );
    c.push(
        case(
            "range pool",
            config(vec![pool("p", &["10.0.0.5-10.0.0.6"])]),
        )
        .sync(vec![svc("a"), svc("b")])
        .expect(
            "default/b",
            &["10.0.0.6"],
            vec![allocated(r#"Assigned IP ["10.0.0.6"]"#)],
        )
        .counters("p", [2, 0, 0, 0]),
    );
}

pub fn two_pools() -> Config {
    config(vec![
        pool("p", &["10.0.0.0/30"]),
        pool("q", &["10.0.1.0/30"]),
    ])
}

fn requests(c: &mut Vec<Case>) {
    c.push(
        case("loadBalancerIPs annotation", v4pool())
            .sync(vec![svc("a").ips("10.0.0.2")])
            .expect(
                "default/a",
                &["10.0.0.2"],
                vec![allocated(r#"Assigned IP ["10.0.0.2"]"#)],
            ),
    );
    c.push(
        case("deprecated loadBalancerIPs honoured and warned", v4pool())
            .sync(vec![
                svc("a").ann("metallb.universe.tf/loadBalancerIPs", "10.0.0.2"),
            ])
            .expect(
                "default/a",
                &["10.0.0.2"],
                vec![
                    allocated(r#"Assigned IP ["10.0.0.2"]"#),
                    deprecated(
                        "Service uses deprecated annotation metallb.universe.tf/loadBalancerIPs",
                    ),
                ],
            ),
    );
    c.push(
        case("spec.loadBalancerIP", v4pool())
            .sync(vec![svc("a").lb_ip("10.0.0.3")])
            .expect(
                "default/a",
                &["10.0.0.3"],
                vec![allocated(r#"Assigned IP ["10.0.0.3"]"#)],
            ),
    );
    c.push(
        case("annotation and spec.loadBalancerIP at once", v4pool())
            .sync(vec![svc("a").ips("10.0.0.2").lb_ip("10.0.0.3")])
            .expect("default/a", &[], vec![failed(
                r#"Failed to allocate IP for "default/a": service can not have both metallb.io/loadBalancerIPs and svc.Spec.LoadBalancerIP"#,
            )]),
    );
    c.push(
        case("deprecated annotation and spec at once", v4pool())
            .sync(vec![svc("a").ann("metallb.universe.tf/loadBalancerIPs", "10.0.0.2").lb_ip("10.0.0.3")])
            .expect("default/a", &[], vec![failed(
                r#"Failed to allocate IP for "default/a": service can not have both metallb.io/loadBalancerIPs and svc.Spec.LoadBalancerIP"#,
            )]),
    );
    c.push(
        case("requested IP outside every pool", v4pool())
            .sync(vec![svc("a").ips("192.168.3.2")])
            .expect("default/a", &[], vec![failed(
                r#"Failed to allocate IP for "default/a": ["192.168.3.2"] is not allowed in config"#,
            )]),
    );
    c.push(
        case("spec.loadBalancerIP outside every pool", v4pool())
            .sync(vec![svc("a").lb_ip("192.168.3.2")])
            .expect("default/a", &[], vec![failed(
                r#"Failed to allocate IP for "default/a": ["192.168.3.2"] is not allowed in config"#,
            )]),
    );
    c.push(
        case("unparsable annotation", v4pool())
            .sync(vec![svc("a").ips("banana")])
            .expect("default/a", &[], vec![failed(
                r#"Failed to allocate IP for "default/a": invalid metallb.io/loadBalancerIPs: "banana""#,
            )]),
    );
    c.push(
        case("unparsable spec.loadBalancerIP", v4pool())
            .sync(vec![svc("a").lb_ip("x")])
            .expect(
                "default/a",
                &[],
                vec![failed(
                    r#"Failed to allocate IP for "default/a": invalid spec.loadBalancerIP "x""#,
                )],
            ),
    );
    c.push(
        case("two requested IPs of one family", v4pool())
            .sync(vec![svc("a").ips("10.0.0.1,10.0.0.2")])
            .expect("default/a", &[], vec![failed(
                r#"Failed to allocate IP for "default/a": IPFamilyForAddresses: same address family ["10.0.0.1" "10.0.0.2"]"#,
            )]),
    );
    c.push(
        case("three requested IPs", dualpool())
            .sync(vec![svc("a").ips("10.0.0.1,fc00::1,10.0.0.2")])
            .expect("default/a", &[], vec![failed(
                r#"Failed to allocate IP for "default/a": IPFamilyForAddresses: invalid ips length 3 ["10.0.0.1" "fc00::1" "10.0.0.2"]"#,
            )]),
    );
    c.push(
        case("requested family differs from the service's", dualpool())
            .sync(vec![svc("a").families(&["IPv4"]).ips("fc00::1")])
            .expect("default/a", &[], vec![failed(
                r#"Failed to allocate IP for "default/a": requested loadBalancer IP(s) ["fc00::1"] does not match the ipFamily of the service"#,
            )]),
    );
    c.push(
        case("one requested IP for a dual-stack service", dualpool())
            .sync(vec![svc("a").dual().ips("10.0.0.1")])
            .expect("default/a", &[], vec![failed(
                r#"Failed to allocate IP for "default/a": requested loadBalancer IP(s) ["10.0.0.1"] does not match the ipFamily of the service"#,
            )]),
    );
    c.push(
        case("requested dual-stack pair, order kept", dualpool())
            .sync(vec![svc("a").dual().ips("fc00::1, 10.0.0.1")])
            .expect(
                "default/a",
                &["fc00::1", "10.0.0.1"],
                vec![allocated(r#"Assigned IP ["fc00::1" "10.0.0.1"]"#)],
            )
            .counters("p", [1, 1, 3, 3]),
    );
    c.push(
        case("requested IP and another address-pool", two_pools())
            .sync(vec![svc("a").ips("10.0.0.1").in_pool("q")])
            .expect("default/a", &[], vec![failed(
                r#"Failed to allocate IP for "default/a": requested loadBalancer IP(s) ["10.0.0.1"] is not compatible with requested address pool q"#,
            )])
            .counters("p", [0, 0, 4, 0]),
    );
    c.push(
        case("requested IP and its own address-pool", two_pools())
            .sync(vec![svc("a").ips("10.0.1.1").in_pool("q")])
            .expect_pool(
                "default/a",
                &["10.0.1.1"],
                "q",
                vec![allocated(r#"Assigned IP ["10.0.1.1"]"#)],
            ),
    );
    c.push(
        case(
            "requested IP in an autoAssign false pool",
            config(vec![pool("p", &["10.0.0.0/30"]).manual()]),
        )
        .sync(vec![svc("a").ips("10.0.0.2")])
        .expect(
            "default/a",
            &["10.0.0.2"],
            vec![allocated(r#"Assigned IP ["10.0.0.2"]"#)],
        ),
    );
    c.push(
        case(
            "requested .0 in an avoidBuggyIPs pool",
            config(vec![pool("p", &["10.0.0.0/24"]).buggy()]),
        )
        .sync(vec![svc("a").ips("10.0.0.0")])
        .expect(
            "default/a",
            &[],
            vec![failed(
                r#"Failed to allocate IP for "default/a": ["10.0.0.0"] is not allowed in config"#,
            )],
        ),
    );
    c.push(
        case(
            "requested .255 in an avoidBuggyIPs pool",
            config(vec![pool("p", &["10.0.0.0/24"]).buggy()]),
        )
        .sync(vec![svc("a").lb_ip("10.0.0.255")])
        .expect(
            "default/a",
            &[],
            vec![failed(
                r#"Failed to allocate IP for "default/a": ["10.0.0.255"] is not allowed in config"#,
            )],
        ),
    );
    c.push(
        case("requested IP held by a service that does not share", v4pool())
            .sync(vec![svc("a"), svc("b").ips("10.0.0.0")])
            .expect("default/a", &["10.0.0.0"], vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)])
            .expect("default/b", &[], vec![failed(
                r#"Failed to allocate IP for "default/b": can't change sharing key for "default/b", address also in use by default/a"#,
            )]),
    );
    c.push(
        case("requested pair split over two pools", config(vec![pool("p", &["10.0.0.0/30"]), pool("q", &["fc00::/126"])]))
            .sync(vec![svc("a").dual().ips("10.0.0.1,fc00::1")])
            .expect("default/a", &[], vec![failed(
                r#"Failed to allocate IP for "default/a": ["10.0.0.1" "fc00::1"] is not allowed in config"#,
            )]),
    );
    c.push(
        case("requested pair, one outside every pool", dualpool())
            .sync(vec![svc("a").dual().ips("10.0.0.1,fd00::1")])
            .expect(
                "default/a",
                &[],
                vec![failed(
                    r#"Failed to allocate IP for "default/a": ["fd00::1"] is not allowed in config"#,
                )],
            ),
    );
    c.push(
        case("spaces around requested IPs", dualpool())
            .sync(vec![svc("a").dual().ips(" 10.0.0.1 , fc00::1 ")])
            .expect(
                "default/a",
                &["10.0.0.1", "fc00::1"],
                vec![allocated(r#"Assigned IP ["10.0.0.1" "fc00::1"]"#)],
            ),
    );
    c.push(
        case(
            "requested IP in a pool reserved to another namespace",
            config(vec![pool("p", &["10.0.0.0/30"]).namespaces(&["team"])]),
        )
        .sync(vec![svc("a").ips("10.0.0.1")])
        .expect(
            "default/a",
            &[],
            vec![failed(
                r#"Failed to allocate IP for "default/a": pool p not compatible for ip assignment"#,
            )],
        ),
    );
    c.push(
        case(
            "requested IP in a pool reserved to its namespace",
            config(vec![pool("p", &["10.0.0.0/30"]).namespaces(&["team"])]),
        )
        .sync(vec![svc("team/a").ips("10.0.0.1")])
        .expect(
            "team/a",
            &["10.0.0.1"],
            vec![allocated(r#"Assigned IP ["10.0.0.1"]"#)],
        ),
    );
}

fn sharing(c: &mut Vec<Case>) {
    c.push(
        case("same key, different ports: one IP", v4pool())
            .sync(vec![
                svc("a").share("k").tcp(80),
                svc("b").share("k").tcp(443),
            ])
            .expect(
                "default/a",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            )
            .expect(
                "default/b",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            )
            .counters("p", [1, 0, 3, 0]),
    );
    c.push(
        case("same key, same port: two IPs", v4pool())
            .sync(vec![
                svc("a").share("k").tcp(80),
                svc("b").share("k").tcp(80),
            ])
            .expect(
                "default/b",
                &["10.0.0.1"],
                vec![allocated(r#"Assigned IP ["10.0.0.1"]"#)],
            ),
    );
    c.push(
        case("different keys: two IPs", v4pool())
            .sync(vec![
                svc("a").share("x").tcp(80),
                svc("b").share("y").tcp(443),
            ])
            .expect(
                "default/b",
                &["10.0.0.1"],
                vec![allocated(r#"Assigned IP ["10.0.0.1"]"#)],
            ),
    );
    c.push(
        case("a key and no key: two IPs", v4pool())
            .sync(vec![svc("a").share("k").tcp(80), svc("b").tcp(443)])
            .expect(
                "default/b",
                &["10.0.0.1"],
                vec![allocated(r#"Assigned IP ["10.0.0.1"]"#)],
            ),
    );
    c.push(
        case("deprecated allow-shared-ip honoured", v4pool())
            .sync(vec![
                svc("a").share("k").tcp(80),
                svc("b")
                    .ann("metallb.universe.tf/allow-shared-ip", "k")
                    .tcp(443),
            ])
            .expect(
                "default/b",
                &["10.0.0.0"],
                vec![
                    allocated(r#"Assigned IP ["10.0.0.0"]"#),
                    deprecated(
                        "Service uses deprecated annotation metallb.universe.tf/allow-shared-ip",
                    ),
                ],
            ),
    );
    c.push(
        case("requested shared IP with a port clash", v4pool())
            .sync(vec![svc("a").share("k").tcp(80), svc("b").share("k").tcp(80).ips("10.0.0.0")])
            .expect("default/b", &[], vec![failed(
                r#"Failed to allocate IP for "default/b": port TCP/80 is already in use on "10.0.0.0""#,
            )]),
    );
    c.push(
        case("requested shared IP without a clash", v4pool())
            .sync(vec![
                svc("a").share("k").tcp(80).ips("10.0.0.2"),
                svc("b").share("k").tcp(443).ips("10.0.0.2"),
            ])
            .expect(
                "default/b",
                &["10.0.0.2"],
                vec![allocated(r#"Assigned IP ["10.0.0.2"]"#)],
            ),
    );
    c.push(
        case("Local services with the same selector share", v4pool())
            .sync(vec![
                svc("a").share("k").tcp(80).local(&[("app", "x")]),
                svc("b").share("k").tcp(81).local(&[("app", "x")]),
            ])
            .expect(
                "default/b",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            ),
    );
    c.push(
        case("Local services with different selectors do not share", v4pool())
            .sync(vec![
                svc("a").share("k").tcp(80).local(&[("app", "x")]),
                svc("b").share("k").tcp(81).local(&[("app", "y")]).ips("10.0.0.0"),
            ])
            .expect("default/b", &[], vec![failed(
                r#"Failed to allocate IP for "default/b": can't change sharing key for "default/b", address also in use by default/a"#,
            )]),
    );
    c.push(
        case("Local and Cluster never mix", v4pool())
            .sync(vec![
                svc("a").share("k").tcp(80).local(&[("app", "x")]),
                svc("b").share("k").tcp(81).cluster(),
            ])
            .expect(
                "default/b",
                &["10.0.0.1"],
                vec![allocated(r#"Assigned IP ["10.0.0.1"]"#)],
            ),
    );
    c.push(
        case("UDP/53 and TCP/53 share", v4pool())
            .sync(vec![
                svc("a").share("k").port("UDP", 53),
                svc("b").share("k").port("TCP", 53),
            ])
            .expect(
                "default/b",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            ),
    );
    c.push(
        case("a service alone on its IP may change its key", v4pool())
            .sync(vec![svc("a").share("x").tcp(80)])
            .then(Step::Up(svc("a").share("y").tcp(80)))
            .expect("default/a", &["10.0.0.0"], vec![]),
    );
    c.push(
        case("a sharer changing its key moves", v4pool())
            .sync(vec![svc("a").share("k").tcp(80), svc("b").share("k").tcp(443)])
            .then(Step::Up(svc("b").share("other").tcp(443)))
            .expect("default/a", &["10.0.0.0"], vec![])
            .expect(
                "default/b",
                &["10.0.0.1"],
                vec![
                    cleared(r#"current IP for "default/b" not allowed by config, will attempt for new IP assignment: can't change sharing key for "default/b", address also in use by default/a"#),
                    allocated(r#"Assigned IP ["10.0.0.1"]"#),
                ],
            ),
    );
    c.push(
        case("a sharer adding a clashing port moves", v4pool())
            .sync(vec![svc("a").share("k").tcp(80), svc("b").share("k").tcp(443)])
            .then(Step::Up(svc("b").share("k").tcp(443).tcp(80)))
            .expect(
                "default/b",
                &["10.0.0.1"],
                vec![
                    cleared(r#"current IP for "default/b" not allowed by config, will attempt for new IP assignment: port TCP/80 is already in use on "10.0.0.0""#),
                    allocated(r#"Assigned IP ["10.0.0.1"]"#),
                ],
            ),
    );
    c.push(
        case("a lower shared IP beats the lowest free one", v4pool())
            .sync(vec![svc("a").share("k").tcp(80), svc("b").tcp(80)])
            .then(Step::Up(svc("c").share("k").tcp(443)))
            .expect(
                "default/c",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            ),
    );
    c.push(
        case("deleting one sharer keeps the IP for the other", v4pool())
            .sync(vec![
                svc("a").share("k").tcp(80),
                svc("b").share("k").tcp(443),
            ])
            .then(Step::Del("default/a"))
            .expect("default/b", &["10.0.0.0"], vec![])
            .counters("p", [1, 0, 3, 0]),
    );
    c.push(
        case("sharing across namespaces", v4pool())
            .sync(vec![
                svc("x/a").share("k").tcp(80),
                svc("y/b").share("k").tcp(443),
            ])
            .expect(
                "y/b",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            ),
    );
}
