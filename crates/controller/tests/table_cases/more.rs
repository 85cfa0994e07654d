//! Dual stack, pinning, config changes, lifecycle, restart, events and counters.

use super::super::*;
use super::two_pools;

fn additional_failed(msg: &'static str) -> Ev {
    ("AdditionalAssignFailed", "Normal", msg)
}

pub fn dual_stack(c: &mut Vec<Case>) {
    c.push(
        case("RequireDualStack: one of each from one pool", dualpool())
            .sync(vec![svc("a").dual()])
            .expect(
                "default/a",
                &["10.0.0.0", "fc00::"],
                vec![allocated(r#"Assigned IP ["10.0.0.0" "fc00::"]"#)],
            )
            .counters("p", [1, 1, 3, 3]),
    );
    c.push(
        case(
            "RequireDualStack skips a pool lacking a family",
            config(vec![
                pool("a", &["10.0.0.0/30"]),
                pool("b", &["10.0.1.0/30", "fc00::/126"]),
            ]),
        )
        .sync(vec![svc("s").dual()])
        .expect_pool(
            "default/s",
            &["10.0.1.0", "fc00::"],
            "b",
            vec![allocated(r#"Assigned IP ["10.0.1.0" "fc00::"]"#)],
        ),
    );
    c.push(
        case(
            "RequireDualStack never splits over two pools",
            config(vec![
                pool("a", &["10.0.0.0/30"]),
                pool("b", &["fc00::/126"]),
            ]),
        )
        .sync(vec![svc("s").dual()])
        .expect(
            "default/s",
            &[],
            vec![failed(
                r#"Failed to allocate IP for "default/s": no available IPs"#,
            )],
        ),
    );
    c.push(
        case("PreferDualStack on an IPv4-only pool", v4pool())
            .sync(vec![svc("a").prefer_dual()])
            .expect(
                "default/a",
                &["10.0.0.0"],
                vec![
                    allocated(r#"Assigned IP ["10.0.0.0"]"#),
                    additional_failed("cannot assign additional IP in PreferDualStack: no available IPs in pool p for ipv6 IPFamily"),
                ],
            ),
    );
    c.push(
        case("PreferDualStack adds IPv6 when the pool gains it", v4pool())
            .sync(vec![svc("a").prefer_dual()])
            .then(Step::Cfg(dualpool()))
            .expect(
                "default/a",
                &["10.0.0.0", "fc00::"],
                vec![allocated(r#"Assigned additional IP "fc00::""#)],
            ),
    );
    c.push(
        case(
            "PreferDualStack primary IPv6 picks the IPv6 pool",
            config(vec![pool("a", &["10.0.0.0/30"]), pool("b", &["fc00::/126"])]),
        )
        .sync(vec![svc("s").families(&["IPv6", "IPv4"]).policy("PreferDualStack")])
        .expect_pool(
            "default/s",
            &["fc00::"],
            "b",
            vec![
                allocated(r#"Assigned IP ["fc00::"]"#),
                additional_failed("cannot assign additional IP in PreferDualStack: no available IPs in pool b for ipv4 IPFamily"),
            ],
        ),
    );
    c.push(
        case(
            "PreferDualStack primary IPv4 picks the IPv4 pool",
            config(vec![pool("a", &["fc00::/126"]), pool("b", &["10.0.0.0/30"])]),
        )
        .sync(vec![svc("s").prefer_dual()])
        .expect_pool(
            "default/s",
            &["10.0.0.0"],
            "b",
            vec![
                allocated(r#"Assigned IP ["10.0.0.0"]"#),
                additional_failed("cannot assign additional IP in PreferDualStack: no available IPs in pool b for ipv6 IPFamily"),
            ],
        ),
    );
    c.push(
        case(
            "PreferDualStack on a single-stack cluster stays single",
            dualpool(),
        )
        .sync(vec![svc("a").families(&["IPv4"]).policy("PreferDualStack")])
        .expect(
            "default/a",
            &["10.0.0.0"],
            vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
        ),
    );
    c.push(
        case("RequireDualStack with one cluster IP", dualpool())
            .sync(vec![
                svc("a")
                    .families(&["IPv4"])
                    .cluster_ips(&["10.96.0.1"])
                    .policy("RequireDualStack"),
            ])
            .expect(
                "default/a",
                &[],
                vec![(
                    "not enough clusterips",
                    "Warning",
                    "Service requires dual stack but not enough clusterips [10.96.0.1]",
                )],
            ),
    );
    c.push(
        case("RequireDualStack in a file without families", dualpool())
            .sync(vec![svc("a").policy("RequireDualStack")])
            .expect(
                "default/a",
                &["10.0.0.0", "fc00::"],
                vec![allocated(r#"Assigned IP ["10.0.0.0" "fc00::"]"#)],
            ),
    );
    c.push(
        case(
            "two families without a policy (file) require both",
            dualpool(),
        )
        .sync(vec![svc("a").families(&["IPv6", "IPv4"])])
        .expect(
            "default/a",
            &["10.0.0.0", "fc00::"],
            vec![allocated(r#"Assigned IP ["10.0.0.0" "fc00::"]"#)],
        ),
    );
    c.push(
        case(
            "PreferDualStack completes when an IPv6 address is freed",
            config(vec![pool("p", &["10.0.0.0/30", "fc00::/128"])]),
        )
        .sync(vec![svc("a").v6(), svc("b").prefer_dual()])
        .then(Step::Del("default/a"))
        .expect(
            "default/b",
            &["10.0.0.0", "fc00::"],
            vec![allocated(r#"Assigned additional IP "fc00::""#)],
        ),
    );
    c.push(
        case(
            "dual stack from a named pool",
            config(vec![
                pool("a", &["10.0.0.0/30"]),
                pool("b", &["10.0.1.0/30", "fc00::/126"]).manual(),
            ]),
        )
        .sync(vec![svc("s").dual().in_pool("b")])
        .expect_pool(
            "default/s",
            &["10.0.1.0", "fc00::"],
            "b",
            vec![allocated(r#"Assigned IP ["10.0.1.0" "fc00::"]"#)],
        ),
    );
    c.push(
        case("dual stack from a named pool lacking IPv6", config(vec![pool("a", &["10.0.0.0/30"])]))
            .sync(vec![svc("s").dual().in_pool("a")])
            .expect("default/s", &[], vec![failed(
                r#"Failed to allocate IP for "default/s": no available IPs in pool a for dual IPFamily"#,
            )]),
    );
    c.push(
        case("IPv6 from a named pool lacking IPv6", config(vec![pool("a", &["10.0.0.0/30"])]))
            .sync(vec![svc("s").v6().in_pool("a")])
            .expect("default/s", &[], vec![failed(
                r#"Failed to allocate IP for "default/s": no available IPs in pool a for ipv6 IPFamily"#,
            )]),
    );
}

pub fn pinning(c: &mut Vec<Case>) {
    let team = || {
        config(vec![
            pool("auto", &["10.0.0.0/30"]),
            pool("team", &["10.0.1.0/30"]).namespaces(&["team"]),
        ])
    };
    c.push(
        case("a pool pinned to the namespace comes first", team())
            .sync(vec![svc("team/s"), svc("default/s")])
            .expect_pool(
                "team/s",
                &["10.0.1.0"],
                "team",
                vec![allocated(r#"Assigned IP ["10.0.1.0"]"#)],
            )
            .expect_pool(
                "default/s",
                &["10.0.0.0"],
                "auto",
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            ),
    );
    c.push(
        case(
            "lower priority number first",
            config(vec![
                pool("p1", &["10.0.1.0/30"])
                    .namespaces(&["team"])
                    .priority(2),
                pool("p2", &["10.0.2.0/30"])
                    .namespaces(&["team"])
                    .priority(1),
            ]),
        )
        .sync(vec![svc("team/s")])
        .expect_pool(
            "team/s",
            &["10.0.2.0"],
            "p2",
            vec![allocated(r#"Assigned IP ["10.0.2.0"]"#)],
        ),
    );
    c.push(
        case(
            "priority 0 sorts last",
            config(vec![
                pool("a0", &["10.0.1.0/30"]).namespaces(&["team"]),
                pool("z5", &["10.0.2.0/30"])
                    .namespaces(&["team"])
                    .priority(5),
            ]),
        )
        .sync(vec![svc("team/s")])
        .expect_pool(
            "team/s",
            &["10.0.2.0"],
            "z5",
            vec![allocated(r#"Assigned IP ["10.0.2.0"]"#)],
        ),
    );
    c.push(
        case(
            "equal priority by name",
            config(vec![
                pool("b", &["10.0.2.0/30"])
                    .namespaces(&["team"])
                    .priority(1),
                pool("a", &["10.0.1.0/30"])
                    .namespaces(&["team"])
                    .priority(1),
            ]),
        )
        .sync(vec![svc("team/s")])
        .expect_pool(
            "team/s",
            &["10.0.1.0"],
            "a",
            vec![allocated(r#"Assigned IP ["10.0.1.0"]"#)],
        ),
    );
    let by_label = || {
        config(vec![
            pool("auto", &["10.0.0.0/30"]),
            pool("prod", &["10.0.1.0/30"]).ns_selector("env", "prod"),
        ])
    };
    c.push(
        case("namespaceSelectors match Namespace labels", by_label())
            .ns(namespace("shop", &[("env", "prod")]))
            .ns(namespace("lab", &[("env", "dev")]))
            .sync(vec![svc("shop/s"), svc("lab/s")])
            .expect_pool(
                "shop/s",
                &["10.0.1.0"],
                "prod",
                vec![allocated(r#"Assigned IP ["10.0.1.0"]"#)],
            )
            .expect_pool(
                "lab/s",
                &["10.0.0.0"],
                "auto",
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            ),
    );
    c.push(
        case(
            "serviceSelectors match Service labels",
            config(vec![
                pool("auto", &["10.0.0.0/30"]),
                pool("web", &["10.0.1.0/30"]).svc_selector("tier", "web"),
            ]),
        )
        .sync(vec![
            svc("a").label("tier", "web"),
            svc("b").label("tier", "db"),
        ])
        .expect_pool(
            "default/a",
            &["10.0.1.0"],
            "web",
            vec![allocated(r#"Assigned IP ["10.0.1.0"]"#)],
        )
        .expect_pool(
            "default/b",
            &["10.0.0.0"],
            "auto",
            vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
        ),
    );
    c.push(
        case(
            "a pinned pool never serves others, even when the rest is full",
            config(vec![
                pool("auto", &["10.0.0.0/32"]),
                pool("team", &["10.0.1.0/30"]).namespaces(&["team"]),
            ]),
        )
        .sync(vec![svc("a"), svc("b")])
        .expect(
            "default/b",
            &[],
            vec![failed(
                r#"Failed to allocate IP for "default/b": no available IPs"#,
            )],
        ),
    );
    c.push(
        case(
            "a full pinned pool falls back to autoAssign pools",
            config(vec![
                pool("auto", &["10.0.0.0/30"]),
                pool("team", &["10.0.1.0/32"]).namespaces(&["team"]),
            ]),
        )
        .sync(vec![svc("team/a"), svc("team/b")])
        .expect_pool(
            "team/a",
            &["10.0.1.0"],
            "team",
            vec![allocated(r#"Assigned IP ["10.0.1.0"]"#)],
        )
        .expect_pool(
            "team/b",
            &["10.0.0.0"],
            "auto",
            vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
        ),
    );
    c.push(
        case(
            "a pinned pool with autoAssign false is not used unasked",
            config(vec![
                pool("auto", &["10.0.0.0/30"]),
                pool("team", &["10.0.1.0/30"])
                    .namespaces(&["team"])
                    .manual(),
            ]),
        )
        .sync(vec![svc("team/a")])
        .expect_pool(
            "team/a",
            &["10.0.0.0"],
            "auto",
            vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
        ),
    );
    c.push(
        case(
            "namespace and service selectors together",
            config(vec![
                pool("auto", &["10.0.0.0/30"]),
                pool("team", &["10.0.1.0/30"])
                    .namespaces(&["team"])
                    .svc_selector("tier", "web"),
            ]),
        )
        .sync(vec![
            svc("team/a").label("tier", "web"),
            svc("team/b"),
            svc("other/c").label("tier", "web"),
        ])
        .expect_pool(
            "team/a",
            &["10.0.1.0"],
            "team",
            vec![allocated(r#"Assigned IP ["10.0.1.0"]"#)],
        )
        .expect_pool(
            "team/b",
            &["10.0.0.1"],
            "auto",
            vec![allocated(r#"Assigned IP ["10.0.0.1"]"#)],
        )
        .expect_pool(
            "other/c",
            &["10.0.0.0"],
            "auto",
            vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
        ),
    );
    c.push(
        case("a namespace losing its label loses the pinned pool", config(vec![pool("p", &["10.0.0.0/30"]).ns_selector("env", "prod")]))
            .ns(namespace("shop", &[("env", "prod")]))
            .sync(vec![svc("shop/s")])
            .then(Step::Ns(namespace("shop", &[("env", "dev")])))
            .expect(
                "shop/s",
                &[],
                vec![
                    cleared(r#"current IP for "shop/s" not allowed by config, will attempt for new IP assignment: pool p not compatible for ip assignment"#),
                    failed(r#"Failed to allocate IP for "shop/s": no available IPs"#),
                ],
            ),
    );
    c.push(
        case(
            "address-pool naming a pool pinned elsewhere",
            config(vec![pool("p", &["10.0.0.0/30"]).namespaces(&["team"])]),
        )
        .sync(vec![svc("a").in_pool("p")])
        .expect(
            "default/a",
            &[],
            vec![failed(
                r#"Failed to allocate IP for "default/a": pool p not compatible for ip assignment"#,
            )],
        ),
    );
}

pub fn config_changes(c: &mut Vec<Case>) {
    c.push(
        case("shrinking the pool clears and re-allocates", v4pool())
            .sync(vec![svc("a"), svc("b")])
            .then(Step::Cfg(config(vec![pool("p", &["10.0.0.1-10.0.0.3"])])))
            .expect(
                "default/a",
                &["10.0.0.2"],
                vec![
                    cleared(r#"current IP for "default/a" not allowed by config, will attempt for new IP assignment: ["10.0.0.0"] is not allowed in config"#),
                    allocated(r#"Assigned IP ["10.0.0.2"]"#),
                ],
            )
            .expect("default/b", &["10.0.0.1"], vec![]),
    );
    c.push(
        case("the only usable pool removed", v4pool())
            .sync(vec![svc("a")])
            .then(Step::Cfg(config(vec![pool("q", &["10.1.0.0/30"]).manual()])))
            .expect(
                "default/a",
                &[],
                vec![
                    cleared(r#"current IP for "default/a" not allowed by config, will attempt for new IP assignment: ["10.0.0.0"] is not allowed in config"#),
                    failed(r#"Failed to allocate IP for "default/a": no available IPs"#),
                ],
            ),
    );
    c.push(
        case("growing the pool keeps every IP", v4pool())
            .sync(vec![svc("a"), svc("b")])
            .then(Step::Cfg(config(vec![pool("p", &["10.0.0.0/29"])])))
            .expect("default/a", &["10.0.0.0"], vec![])
            .expect("default/b", &["10.0.0.1"], vec![])
            .counters("p", [2, 0, 6, 0]),
    );
    c.push(
        case("turning on avoidBuggyIPs clears .0", v4pool())
            .sync(vec![svc("a"), svc("b")])
            .then(Step::Cfg(config(vec![pool("p", &["10.0.0.0/30"]).buggy()])))
            .expect(
                "default/a",
                &["10.0.0.2"],
                vec![
                    cleared(r#"current IP for "default/a" not allowed by config, will attempt for new IP assignment: ["10.0.0.0"] is not allowed in config"#),
                    allocated(r#"Assigned IP ["10.0.0.2"]"#),
                ],
            )
            .expect("default/b", &["10.0.0.1"], vec![]),
    );
    c.push(
        case("renaming the pool keeps the IP, new annotation", v4pool())
            .sync(vec![svc("a")])
            .then(Step::Cfg(config(vec![pool("q", &["10.0.0.0/30"])])))
            .expect_pool("default/a", &["10.0.0.0"], "q", vec![]),
    );
    c.push(
        case("a pool becoming reserved to another namespace", v4pool())
            .sync(vec![svc("a")])
            .then(Step::Cfg(config(vec![
                pool("p", &["10.0.0.0/30"]).namespaces(&["team"]),
                pool("r", &["10.9.0.0/30"]),
            ])))
            .expect_pool(
                "default/a",
                &["10.9.0.0"],
                "r",
                vec![
                    cleared(r#"current IP for "default/a" not allowed by config, will attempt for new IP assignment: pool p not compatible for ip assignment"#),
                    allocated(r#"Assigned IP ["10.9.0.0"]"#),
                ],
            ),
    );
    c.push(
        case("no pools at all releases everything quietly", v4pool())
            .sync(vec![svc("a")])
            .then(Step::Cfg(Config::default()))
            .expect("default/a", &[], vec![]),
    );
    c.push(
        case("a requested IP leaving the config fails again", v4pool())
            .sync(vec![svc("a").ips("10.0.0.3")])
            .then(Step::Cfg(config(vec![pool("p", &["10.0.0.0/31"])])))
            .expect(
                "default/a",
                &[],
                vec![
                    cleared(r#"current IP for "default/a" not allowed by config, will attempt for new IP assignment: ["10.0.0.3"] is not allowed in config"#),
                    failed(r#"Failed to allocate IP for "default/a": ["10.0.0.3"] is not allowed in config"#),
                ],
            ),
    );
    c.push(
        case(
            "a pending service gets an address the new config adds",
            config(vec![pool("p", &["10.0.0.0/32"])]),
        )
        .sync(vec![svc("a"), svc("b")])
        .then(Step::Cfg(v4pool()))
        .expect("default/a", &["10.0.0.0"], vec![])
        .expect(
            "default/b",
            &["10.0.0.1"],
            vec![allocated(r#"Assigned IP ["10.0.0.1"]"#)],
        ),
    );
}

pub fn lifecycle(c: &mut Vec<Case>) {
    let one = || config(vec![pool("p", &["10.0.0.0/32"])]);
    c.push(
        case(
            "no longer LoadBalancer: released, the pending one gets it",
            one(),
        )
        .sync(vec![svc("a"), svc("b")])
        .then(Step::Up(svc("a").kind("ClusterIP")))
        .expect("default/a", &[], vec![])
        .expect(
            "default/b",
            &["10.0.0.0"],
            vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
        ),
    );
    c.push(
        case("class changed: released and left alone", one())
            .sync(vec![svc("a"), svc("b")])
            .then(Step::Up(svc("a").class("other")))
            .expect("default/a", &[], vec![])
            .expect(
                "default/b",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            ),
    );
    c.push(
        case("--lb-class: only that class", v4pool())
            .class("oxlb")
            .sync(vec![svc("a").class("oxlb"), svc("b")])
            .expect(
                "default/a",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            )
            .expect("default/b", &[], vec![]),
    );
    c.push(
        case("a Service of another class is ignored", v4pool())
            .sync(vec![
                svc("a").class("other").status(&["10.0.0.0"]),
                svc("b"),
            ])
            .expect("default/a", &[], vec![])
            .expect(
                "default/b",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            ),
    );
    c.push(
        case("deleting frees the address for a pending one", one())
            .sync(vec![svc("a"), svc("b")])
            .then(Step::Del("default/a"))
            .expect(
                "default/b",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            )
            .counters("p", [1, 0, 0, 0]),
    );
    c.push(
        case("changing address-pool moves the service", two_pools())
            .sync(vec![svc("a")])
            .then(Step::Up(svc("a").in_pool("q")))
            .expect_pool(
                "default/a",
                &["10.0.1.0"],
                "q",
                vec![allocated(r#"Assigned IP ["10.0.1.0"]"#)],
            ),
    );
    c.push(
        case(
            "address-pool naming the current pool keeps the IP",
            two_pools(),
        )
        .sync(vec![svc("a")])
        .then(Step::Up(svc("a").in_pool("p")))
        .expect_pool("default/a", &["10.0.0.0"], "p", vec![]),
    );
    c.push(
        case("changing the requested IP moves the service", v4pool())
            .sync(vec![svc("a")])
            .then(Step::Up(svc("a").ips("10.0.0.3")))
            .expect(
                "default/a",
                &["10.0.0.3"],
                vec![allocated(r#"Assigned IP ["10.0.0.3"]"#)],
            )
            .counters("p", [1, 0, 3, 0]),
    );
    c.push(
        case("requesting the IP already held changes nothing", v4pool())
            .sync(vec![svc("a")])
            .then(Step::Up(svc("a").ips("10.0.0.0")))
            .expect("default/a", &["10.0.0.0"], vec![]),
    );
    c.push(
        case("an invalid request while holding an IP keeps it", v4pool())
            .sync(vec![svc("a")])
            .then(Step::Up(svc("a").ips("nope")))
            .expect(
                "default/a",
                &["10.0.0.0"],
                vec![(
                    "LoadBalancerFailed",
                    "Warning",
                    r#"invalid requested loadbalancer IPs: invalid metallb.io/loadBalancerIPs: "nope""#,
                )],
            ),
    );
    c.push(
        case("removing the request keeps the IP", v4pool())
            .sync(vec![svc("a").ips("10.0.0.2")])
            .then(Step::Up(svc("a")))
            .expect("default/a", &["10.0.0.2"], vec![]),
    );
    c.push(
        case("a family change re-allocates quietly", dualpool())
            .sync(vec![svc("a")])
            .then(Step::Up(svc("a").v6()))
            .expect(
                "default/a",
                &["fc00::"],
                vec![allocated(r#"Assigned IP ["fc00::"]"#)],
            )
            .counters("p", [0, 1, 4, 3]),
    );
}

pub fn restart(c: &mut Vec<Case>) {
    c.push(
        case(
            "held IPs are re-claimed before pending ones allocate",
            v4pool(),
        )
        .sync(vec![svc("a"), svc("b").status(&["10.0.0.0"])])
        .expect(
            "default/a",
            &["10.0.0.1"],
            vec![allocated(r#"Assigned IP ["10.0.0.1"]"#)],
        )
        .expect("default/b", &["10.0.0.0"], vec![]),
    );
    c.push(
        case("a held IP that is not the lowest stays", v4pool())
            .sync(vec![svc("a").status(&["10.0.0.3"]), svc("b")])
            .expect("default/a", &["10.0.0.3"], vec![])
            .expect(
                "default/b",
                &["10.0.0.0"],
                vec![allocated(r#"Assigned IP ["10.0.0.0"]"#)],
            ),
    );
    c.push(
        case("a held IP no longer in config", v4pool())
            .sync(vec![svc("a").status(&["192.168.1.1"])])
            .expect(
                "default/a",
                &["10.0.0.0"],
                vec![
                    cleared(r#"current IP for "default/a" not allowed by config, will attempt for new IP assignment: ["192.168.1.1"] is not allowed in config"#),
                    allocated(r#"Assigned IP ["10.0.0.0"]"#),
                ],
            ),
    );
    c.push(
        case("two services claiming one IP: the first by key keeps it", v4pool())
            .sync(vec![svc("b").status(&["10.0.0.1"]), svc("a").status(&["10.0.0.1"])])
            .expect("default/a", &["10.0.0.1"], vec![])
            .expect(
                "default/b",
                &["10.0.0.0"],
                vec![
                    cleared(r#"current IP for "default/b" not allowed by config, will attempt for new IP assignment: can't change sharing key for "default/b", address also in use by default/a"#),
                    allocated(r#"Assigned IP ["10.0.0.0"]"#),
                ],
            ),
    );
    c.push(
        case(
            "a held IP of the wrong family is dropped quietly",
            dualpool(),
        )
        .sync(vec![svc("a").v6().status(&["10.0.0.1"])])
        .expect(
            "default/a",
            &["fc00::"],
            vec![allocated(r#"Assigned IP ["fc00::"]"#)],
        ),
    );
    c.push(
        case("a shared IP is re-claimed by all its holders", v4pool())
            .sync(vec![
                svc("a").share("k").tcp(80).status(&["10.0.0.3"]),
                svc("b").share("k").tcp(443).status(&["10.0.0.3"]),
            ])
            .expect("default/a", &["10.0.0.3"], vec![])
            .expect("default/b", &["10.0.0.3"], vec![])
            .counters("p", [1, 0, 3, 0]),
    );
    c.push(
        case("a held dual-stack pair stays", dualpool())
            .sync(vec![
                svc("c").dual().status(&["10.0.0.2", "fc00::2"]),
                svc("d").dual(),
            ])
            .expect("default/c", &["10.0.0.2", "fc00::2"], vec![])
            .expect(
                "default/d",
                &["10.0.0.0", "fc00::"],
                vec![allocated(r#"Assigned IP ["10.0.0.0" "fc00::"]"#)],
            ),
    );
    c.push(
        case(
            "a held IP outside the requested address-pool moves",
            two_pools(),
        )
        .sync(vec![svc("a").in_pool("q").status(&["10.0.0.2"])])
        .expect_pool(
            "default/a",
            &["10.0.1.0"],
            "q",
            vec![allocated(r#"Assigned IP ["10.0.1.0"]"#)],
        ),
    );
    c.push(
        case(
            "a held PreferDualStack IPv4 address is completed",
            dualpool(),
        )
        .sync(vec![svc("a").prefer_dual().status(&["10.0.0.3"])])
        .expect(
            "default/a",
            &["10.0.0.3", "fc00::"],
            vec![allocated(r#"Assigned additional IP "fc00::""#)],
        ),
    );
}

pub fn events_and_counters(c: &mut Vec<Case>) {
    c.push(
        case("no deprecation warning when nothing changes", v4pool())
            .sync(vec![
                svc("a").ann("metallb.universe.tf/allow-shared-ip", "k"),
            ])
            .then(Step::Up(
                svc("a")
                    .ann("metallb.universe.tf/allow-shared-ip", "k")
                    .ann("metallb.io/ip-allocated-from-pool", "p")
                    .status(&["10.0.0.0"]),
            ))
            .expect("default/a", &["10.0.0.0"], vec![]),
    );
    c.push(
        case(
            "the deprecated pool annotation is replaced, with a warning",
            v4pool(),
        )
        .sync(vec![
            svc("a")
                .ann("metallb.universe.tf/ip-allocated-from-pool", "p")
                .ann("metallb.io/ip-allocated-from-pool", "p")
                .status(&["10.0.0.0"]),
        ])
        .expect(
            "default/a",
            &["10.0.0.0"],
            vec![deprecated(
                "Service uses deprecated annotation metallb.universe.tf/ip-allocated-from-pool",
            )],
        ),
    );
    c.push(
        case("a second identical sync is silent", v4pool())
            .sync(vec![svc("a"), svc("b")])
            .then(Step::Up(svc("c")))
            .then(Step::Del("default/c"))
            .expect("default/a", &["10.0.0.0"], vec![])
            .expect("default/b", &["10.0.0.1"], vec![]),
    );
    c.push(
        case(
            "a pending failure is not repeated for unrelated changes",
            config(vec![pool("p", &["10.0.0.0/32"])]),
        )
        .sync(vec![svc("a"), svc("b")])
        .then(Step::Up(svc("c")))
        .expect("default/b", &[], vec![])
        .expect(
            "default/c",
            &[],
            vec![failed(
                r#"Failed to allocate IP for "default/c": no available IPs"#,
            )],
        ),
    );
    c.push(
        case(
            "a pending failure is repeated when the service changes",
            config(vec![pool("p", &["10.0.0.0/32"])]),
        )
        .sync(vec![svc("a"), svc("b")])
        .then(Step::Up(svc("b").tcp(80)))
        .expect(
            "default/b",
            &[],
            vec![failed(
                r#"Failed to allocate IP for "default/b": no available IPs"#,
            )],
        ),
    );
    c.push(
        case(
            "an IPv6 /64 counts 2^64 addresses",
            config(vec![pool("p", &["fc00::/64"])]),
        )
        .sync(vec![svc("a").v6()])
        .counters("p", [0, 1, 0, (1u128 << 64) - 1]),
    );
    c.push(
        case(
            "an avoidBuggyIPs /16 counts 254 per /24",
            config(vec![pool("p", &["10.0.0.0/16"]).buggy()]),
        )
        .sync(vec![])
        .counters("p", [0, 0, 256 * 254, 0]),
    );
    c.push(
        case("counters follow releases", v4pool())
            .sync(vec![svc("a"), svc("b"), svc("c")])
            .then(Step::Del("default/b"))
            .counters("p", [2, 0, 2, 0]),
    );
    c.push(
        case(
            "a pool with both families counts each",
            config(vec![pool("p", &["10.0.0.0/29", "fc00::/125"])]),
        )
        .sync(vec![svc("a").dual(), svc("b").v6()])
        .counters("p", [1, 2, 7, 6]),
    );
}
