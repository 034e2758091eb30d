//! Property tests of the models: every type survives a JSON round trip; `validate()`
//! never panics; and a valid request broken in one known way names exactly that field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use diego_core::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _/.:-]{0,12}"
}

fn guid() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_-]{1,12}"
}

fn env() -> impl Strategy<Value = Vec<EnvironmentVariable>> {
    vec(
        ("[A-Z_]{1,8}", text()).prop_map(|(n, v)| EnvironmentVariable::new(n, v)),
        0..3,
    )
}

fn run_action() -> impl Strategy<Value = RunAction> {
    (
        "/[a-z/]{1,10}",
        vec(text(), 0..3),
        text(),
        env(),
        "[a-z]{1,6}",
        option::of((option::of(1u64..4096), option::of(1u64..4096))),
        text(),
        any::<bool>(),
    )
        .prop_map(
            |(path, args, dir, env, user, limits, log_source, suppress)| RunAction {
                path,
                args,
                dir,
                env,
                user,
                resource_limits: limits.map(|(nofile, nproc)| ResourceLimits { nofile, nproc }),
                log_source,
                suppress_log_output: suppress,
            },
        )
}

fn leaf_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        run_action().prop_map(Action::Run),
        (
            text(),
            "http://[a-z]{1,8}/[a-z]{1,8}",
            "/[a-z]{1,8}",
            text(),
            "[a-z]{1,6}",
            prop_oneof![
                Just(("", "")),
                Just(("sha256", "abcd")),
                Just(("MD5", "ff"))
            ]
        )
            .prop_map(|(artifact, from, to, cache_key, user, (alg, val))| {
                Action::Download(DownloadAction {
                    artifact,
                    from,
                    to,
                    cache_key,
                    log_source: String::new(),
                    user,
                    checksum_algorithm: alg.into(),
                    checksum_value: val.into(),
                })
            }),
        (text(), "/[a-z]{1,8}", "http://[a-z]{1,8}/up", "[a-z]{1,6}").prop_map(
            |(artifact, from, to, user)| Action::Upload(UploadAction {
                artifact,
                from,
                to,
                log_source: String::new(),
                user,
            })
        ),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    leaf_action().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            (inner.clone(), 1i64..100_000).prop_map(|(a, t)| Action::timeout(a, t)),
            inner.clone().prop_map(Action::try_),
            vec(inner.clone(), 1..3).prop_map(Action::serial),
            vec(inner.clone(), 1..3).prop_map(Action::parallel),
            vec(inner.clone(), 1..3).prop_map(Action::codependent),
            (inner, text(), text(), text()).prop_map(|(a, s, ok, f)| {
                Action::EmitProgress(EmitProgressAction {
                    action: Some(Box::new(a)),
                    start_message: s,
                    success_message: ok,
                    failure_message_prefix: f,
                    log_source: String::new(),
                })
            }),
        ]
    })
}

fn check() -> impl Strategy<Value = Check> {
    prop_oneof![
        (1u32..65_536, 0u64..5000, 0u64..60_000).prop_map(|(port, t, i)| Check {
            tcp_check: Some(TcpCheck {
                port,
                connect_timeout_ms: t,
                interval_ms: i
            }),
            http_check: None,
        }),
        (1u32..65_536, "(/[a-z]{0,6})?", 0u64..5000, 0u64..60_000).prop_map(
            |(port, path, t, i)| Check {
                tcp_check: None,
                http_check: Some(HttpCheck {
                    port,
                    path,
                    request_timeout_ms: t,
                    interval_ms: i
                }),
            }
        ),
    ]
}

fn check_definition() -> impl Strategy<Value = CheckDefinition> {
    (vec(check(), 0..3), vec(check(), 0..2), text()).prop_map(|(checks, readiness, log_source)| {
        CheckDefinition {
            checks,
            readiness_checks: readiness,
            log_source,
        }
    })
}

fn routes() -> impl Strategy<Value = Routes> {
    (
        vec("[a-z]{1,8}\\.localhost", 0..3),
        1u32..65_536,
        any::<bool>(),
    )
        .prop_map(|(hosts, port, tcp)| {
            let mut r = Routes::new();
            if !hosts.is_empty() {
                r.set_http_routes(&[HttpRoute {
                    hostnames: hosts,
                    port,
                    route_service_url: String::new(),
                }]);
            }
            if tcp {
                r.set_tcp_routes(&[TcpRoute {
                    router_group_guid: "default".into(),
                    external_port: 61_000,
                    container_port: port,
                }]);
            }
            r
        })
}

fn egress_rule() -> impl Strategy<Value = EgressRule> {
    prop_oneof![
        (vec(1u32..65_536, 1..3), any::<bool>()).prop_map(|(ports, log)| EgressRule {
            protocol: "tcp".into(),
            destinations: vec!["10.0.0.0/8".into()],
            ports,
            log,
            ..Default::default()
        }),
        (1u32..1000, 0u32..1000).prop_map(|(start, extra)| EgressRule {
            protocol: "udp".into(),
            destinations: vec!["10.0.0.1-10.0.0.9".into()],
            port_range: Some(PortRange {
                start,
                end: start + extra
            }),
            ..Default::default()
        }),
        (-1i32..20, -1i32..20).prop_map(|(t, c)| EgressRule {
            protocol: "icmp".into(),
            destinations: vec!["1.2.3.4".into()],
            icmp_info: Some(IcmpInfo {
                icmp_type: t,
                code: c
            }),
            ..Default::default()
        }),
    ]
}

fn volume_mount() -> impl Strategy<Value = VolumeMount> {
    (
        "[a-z]{1,6}",
        "/[a-z]{1,8}",
        prop_oneof![Just("r"), Just("rw")],
        guid(),
        text(),
    )
        .prop_map(|(driver, dir, mode, id, config)| VolumeMount {
            driver,
            container_dir: dir,
            mode: mode.into(),
            shared: SharedDevice {
                volume_id: id,
                mount_config: config,
            },
        })
}

fn metric_tags() -> impl Strategy<Value = MetricTags> {
    proptest::collection::btree_map(
        "[a-z]{1,6}",
        prop_oneof![
            "[a-z]{1,6}".prop_map(MetricTagValue::fixed),
            Just(MetricTagValue {
                static_value: String::new(),
                dynamic: Some(DynamicMetricTag::Index)
            }),
            Just(MetricTagValue {
                static_value: String::new(),
                dynamic: Some(DynamicMetricTag::InstanceGuid)
            }),
        ],
        0..3,
    )
}

fn network() -> impl Strategy<Value = Option<Network>> {
    option::of(
        proptest::collection::btree_map("[a-z]{1,6}", text(), 0..3)
            .prop_map(|properties| Network { properties }),
    )
}

fn creds() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        Just((String::new(), String::new())),
        ("[a-z]{1,6}", "[a-z]{1,6}"),
    ]
}

fn log_rate_limit() -> impl Strategy<Value = Option<LogRateLimit>> {
    option::of((-1i64..1_000_000).prop_map(|b| LogRateLimit {
        bytes_per_second: b,
    }))
}

fn modification_tag() -> impl Strategy<Value = ModificationTag> {
    (guid(), any::<u32>()).prop_map(|(epoch, index)| ModificationTag { epoch, index })
}

fn rootfs() -> impl Strategy<Value = String> {
    prop_oneof!["preloaded:[a-z0-9]{1,10}", "docker:///[a-z]{1,10}",]
}

fn task_definition() -> impl Strategy<Value = TaskDefinition> {
    (
        (
            rootfs(),
            env(),
            action(),
            0i32..4096,
            0i32..4096,
            0i32..1024,
            0u32..=100,
            any::<bool>(),
        ),
        (
            text(),
            text(),
            text(),
            text(),
            prop_oneof![
                Just(String::new()),
                Just("http://cb.example/done".to_owned())
            ],
            "[ -~]{0,40}",
        ),
        (
            vec(egress_rule(), 0..2),
            vec(volume_mount(), 0..2),
            network(),
            vec("[a-z]{1,5}", 0..2),
            creds(),
            log_rate_limit(),
            metric_tags(),
        ),
    )
        .prop_map(
            |(
                (rootfs, env, action, disk_mb, memory_mb, max_pids, cpu_weight, privileged),
                (
                    log_source,
                    log_guid,
                    metrics_guid,
                    result_file,
                    completion_callback_url,
                    annotation,
                ),
                (
                    egress_rules,
                    volume_mounts,
                    network,
                    placement_tags,
                    (u, p),
                    log_rate_limit,
                    metric_tags,
                ),
            )| TaskDefinition {
                rootfs,
                env,
                action: Some(action),
                disk_mb,
                memory_mb,
                max_pids,
                cpu_weight,
                privileged,
                log_source,
                log_guid,
                metrics_guid,
                result_file,
                completion_callback_url,
                annotation,
                egress_rules,
                volume_mounts,
                network,
                placement_tags,
                image_username: u,
                image_password: p,
                log_rate_limit,
                metric_tags,
            },
        )
}

fn task_state() -> impl Strategy<Value = TaskState> {
    prop_oneof![
        Just(TaskState::Pending),
        Just(TaskState::Running),
        Just(TaskState::Completed),
        Just(TaskState::Resolving),
    ]
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (0i64..4_000_000_000_000_000_000).prop_map(Timestamp)
}

fn desire_task_request() -> impl Strategy<Value = DesireTaskRequest> {
    (guid(), "[a-z-]{1,10}", task_definition()).prop_map(|(g, domain, def)| DesireTaskRequest {
        task_guid: TaskGuid::new(g),
        domain,
        task_definition: def,
    })
}

fn task() -> impl Strategy<Value = Task> {
    (
        desire_task_request(),
        task_state(),
        option::of(guid()),
        (text(), any::<bool>(), text()),
        (timestamp(), timestamp(), timestamp()),
        (0i32..10, text()),
        modification_tag(),
    )
        .prop_map(
            |(req, state, cell, (result, failed, reason), (c, u, f), (rc, rr), tag)| Task {
                task_guid: req.task_guid,
                domain: req.domain,
                task_definition: req.task_definition,
                state,
                cell_id: cell.map(CellId::new),
                result,
                failed,
                failure_reason: reason,
                created_at: c,
                updated_at: u,
                first_completed_at: f,
                rejection_count: rc,
                rejection_reason: rr,
                modification_tag: tag,
            },
        )
}

fn desired_lrp() -> impl Strategy<Value = DesiredLrp> {
    let scheduling = (
        (
            guid(),
            "[a-z-]{1,10}",
            text(),
            0i32..100,
            rootfs(),
            0i32..8192,
            0i32..8192,
            0i32..1024,
        ),
        (
            vec("[a-z]{1,5}", 0..2),
            routes(),
            "[ -~]{0,40}",
            prop_oneof![
                Just(UpdateStrategy::Rolling),
                Just(UpdateStrategy::Recreate)
            ],
            modification_tag(),
        ),
    )
        .prop_map(
            |(
                (pg, domain, log_guid, instances, rootfs, memory_mb, disk_mb, max_pids),
                (tags, routes, annotation, update_strategy, tag),
            )| {
                SchedulingInfo {
                    process_guid: ProcessGuid::new(pg),
                    domain,
                    log_guid,
                    instances,
                    rootfs,
                    memory_mb,
                    disk_mb,
                    max_pids,
                    placement_tags: tags,
                    volume_placement: VolumePlacement::default(),
                    routes,
                    annotation,
                    update_strategy,
                    modification_tag: tag,
                }
            },
        );
    let run = (
        (
            env(),
            option::of(action()),
            action(),
            option::of(action()),
            option::of(check_definition()),
            0u64..120_000,
            vec(1u32..65_536, 0..3),
            any::<bool>(),
        ),
        (
            0u32..=100,
            text(),
            text(),
            metric_tags(),
            vec(egress_rule(), 0..2),
            vec(volume_mount(), 0..2),
        ),
        (
            vec((action(), 0i32..64, 0i32..64), 0..2),
            network(),
            creds(),
            log_rate_limit(),
            timestamp(),
        ),
    )
        .prop_map(
            |(
                (
                    env,
                    setup,
                    action,
                    monitor,
                    check_definition,
                    start_timeout_ms,
                    ports,
                    privileged,
                ),
                (cpu_weight, log_source, metrics_guid, metric_tags, egress_rules, volume_mounts),
                (sidecars, network, (u, p), log_rate_limit, created_at),
            )| RunInfo {
                env,
                setup,
                action: Some(action),
                monitor,
                check_definition,
                start_timeout_ms,
                ports,
                privileged,
                cpu_weight,
                log_source,
                metrics_guid,
                metric_tags,
                egress_rules,
                volume_mounts,
                sidecars: sidecars
                    .into_iter()
                    .map(|(a, d, m)| Sidecar {
                        action: Some(a),
                        disk_mb: d,
                        memory_mb: m,
                    })
                    .collect(),
                network,
                image_username: u,
                image_password: p,
                log_rate_limit,
                created_at,
            },
        );
    (scheduling, run).prop_map(|(mut scheduling_info, run_info)| {
        scheduling_info.volume_placement = VolumePlacement::from_mounts(&run_info.volume_mounts);
        DesiredLrp {
            scheduling_info,
            run_info,
        }
    })
}

fn desired_lrp_update() -> impl Strategy<Value = DesiredLrpUpdate> {
    (
        option::of(0i32..100),
        option::of(routes()),
        option::of("[ -~]{0,20}"),
        option::of(metric_tags()),
        option::of(("[a-z]{1,5}", "[a-z]{1,5}")),
    )
        .prop_map(
            |(instances, routes, annotation, metric_tags, creds)| DesiredLrpUpdate {
                instances,
                routes,
                annotation,
                metric_tags,
                image_username: creds.as_ref().map(|c| c.0.clone()),
                image_password: creds.map(|c| c.1),
            },
        )
}

fn actual_lrp() -> impl Strategy<Value = ActualLrp> {
    let states = prop_oneof![
        Just(ActualLrpState::Unclaimed),
        Just(ActualLrpState::Claimed),
        Just(ActualLrpState::Running),
        Just(ActualLrpState::Crashed),
    ];
    let presences = prop_oneof![
        Just(Presence::Ordinary),
        Just(Presence::Evacuating),
        Just(Presence::Suspect),
    ];
    let net = option::of(
        (
            "10\\.0\\.[0-9]{1,2}\\.[0-9]{1,2}",
            text(),
            prop_oneof![
                Just(PreferredAddress::Unknown),
                Just(PreferredAddress::Instance),
                Just(PreferredAddress::Host)
            ],
            vec((1u32..65_536, 1u32..65_536, 0u32..3, 0u32..3), 0..3),
        )
            .prop_map(|(address, instance_address, preferred_address, ports)| {
                ActualLrpNetInfo {
                    address,
                    instance_address,
                    preferred_address,
                    ports: ports
                        .into_iter()
                        .map(|(c, h, ct, ht)| PortMapping {
                            container_port: c,
                            host_port: h,
                            container_tls_proxy_port: ct,
                            host_tls_proxy_port: ht,
                        })
                        .collect(),
                }
            }),
    );
    (
        (guid(), 0i32..1000, "[a-z]{1,8}"),
        option::of((guid(), guid())),
        net,
        states,
        presences,
        (
            0i32..300,
            text(),
            text(),
            timestamp(),
            any::<bool>(),
            text(),
        ),
        modification_tag(),
    )
        .prop_map(
            |(
                (pg, index, domain),
                ik,
                net_info,
                state,
                presence,
                (cc, cr, pe, since, routable, az),
                tag,
            )| ActualLrp {
                key: ActualLrpKey::new(pg, index, domain),
                instance_key: ik.map(|(i, c)| ActualLrpInstanceKey::new(i, c)),
                net_info,
                state,
                presence,
                crash_count: cc,
                crash_reason: cr,
                placement_error: pe,
                since,
                routable,
                availability_zone: az,
                modification_tag: tag,
            },
        )
}

fn capacity() -> impl Strategy<Value = CellCapacity> {
    (1i32..100_000, 0i32..100_000, 1i32..500).prop_map(|(m, d, c)| CellCapacity {
        memory_mb: m,
        disk_mb: d,
        containers: c,
    })
}

fn providers() -> impl Strategy<Value = RootfsProviders> {
    proptest::collection::btree_map("[a-z]{1,9}", vec("[a-z0-9]{1,8}", 0..2), 0..3)
        .prop_map(RootfsProviders)
}

fn cell_presence() -> impl Strategy<Value = CellPresence> {
    (
        guid(),
        "127\\.0\\.0\\.1:[0-9]{4}",
        text(),
        "z[0-9]",
        capacity(),
        providers(),
        (
            vec("[a-z]{1,4}", 0..2),
            vec("[a-z]{1,4}", 0..2),
            vec("[a-z]{1,4}", 0..2),
        ),
    )
        .prop_map(
            |(id, addr, url, zone, capacity, providers, (tags, optional, drivers))| CellPresence {
                cell_id: CellId::new(id),
                rep_address: addr,
                rep_url: url,
                zone,
                capacity,
                rootfs_providers: providers,
                placement_tags: tags,
                optional_placement_tags: optional,
                volume_drivers: drivers,
            },
        )
}

fn resource() -> impl Strategy<Value = Resource> {
    (0i32..4096, 0i32..4096, 0i32..100).prop_map(|(m, d, p)| Resource {
        memory_mb: m,
        disk_mb: d,
        max_pids: p,
    })
}

fn cell_state() -> impl Strategy<Value = CellState> {
    (
        cell_presence(),
        capacity(),
        vec((guid(), 0i32..10, resource()), 0..3),
        vec((guid(), resource()), 0..3),
        (0i32..10, any::<bool>(), 0i32..64),
    )
        .prop_map(
            |(p, available, lrps, tasks, (starting, evacuating, proxy))| CellState {
                cell_id: p.cell_id,
                rep_url: p.rep_url,
                zone: p.zone,
                available_resources: available,
                total_resources: p.capacity,
                lrps: lrps
                    .into_iter()
                    .map(|(g, i, r)| LrpSummary {
                        key: ActualLrpKey::new(g, i, "apps"),
                        resource: r,
                    })
                    .collect(),
                tasks: tasks
                    .into_iter()
                    .map(|(g, r)| TaskSummary {
                        task_guid: TaskGuid::new(g),
                        domain: "tasks".into(),
                        resource: r,
                    })
                    .collect(),
                starting_container_count: starting,
                evacuating,
                rootfs_providers: p.rootfs_providers,
                placement_tags: p.placement_tags,
                optional_placement_tags: p.optional_placement_tags,
                volume_drivers: p.volume_drivers,
                proxy_memory_allocation_mb: proxy,
                lrp_lineage: Default::default(),
                lrp_fingerprints: Default::default(),
            },
        )
}

fn domain() -> impl Strategy<Value = Domain> {
    ("[a-z]{1,8}", option::of(timestamp()))
        .prop_map(|(name, expires_at)| Domain { name, expires_at })
}

fn round_trips<T>(value: &T) -> Result<(), TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_string(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: T =
        serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn task_round_trips(t in task()) { round_trips(&t)?; }

    #[test]
    fn desire_task_request_round_trips(r in desire_task_request()) { round_trips(&r)?; }

    #[test]
    fn desired_lrp_round_trips(d in desired_lrp()) { round_trips(&d)?; }

    #[test]
    fn desired_lrp_update_round_trips(u in desired_lrp_update()) { round_trips(&u)?; }

    #[test]
    fn actual_lrp_round_trips(a in actual_lrp()) { round_trips(&a)?; }

    #[test]
    fn cell_presence_round_trips(c in cell_presence()) { round_trips(&c)?; }

    #[test]
    fn cell_state_round_trips(c in cell_state()) { round_trips(&c)?; }

    #[test]
    fn domain_round_trips(d in domain()) { round_trips(&d)?; }

    #[test]
    fn action_round_trips(a in action()) { round_trips(&a)?; }

    #[test]
    fn check_definition_round_trips(c in check_definition()) { round_trips(&c)?; }

    #[test]
    fn auction_requests_round_trip(d in desired_lrp(), t in task()) {
        round_trips(&LrpStartRequest::new(&d.scheduling_info, vec![0, 1]))?;
        round_trips(&TaskStartRequest::new(&t))?;
    }

    #[test]
    fn generated_requests_are_valid(t in desire_task_request(), d in desired_lrp(), u in desired_lrp_update()) {
        prop_assert!(t.validate().is_ok(), "{:?}", t.validate());
        prop_assert!(d.validate().is_ok(), "{:?}", d.validate());
        prop_assert!(u.validate().is_ok(), "{:?}", u.validate());
    }
}

/// One way to break a DesiredLRP, and the field that must then be named.
type Breakage = (&'static str, fn(&mut DesiredLrp));

fn lrp_breakages() -> Vec<Breakage> {
    vec![
        ("process_guid", |d| {
            d.scheduling_info.process_guid = ProcessGuid::new("no spaces allowed")
        }),
        ("domain", |d| d.scheduling_info.domain.clear()),
        ("rootfs", |d| d.scheduling_info.rootfs = "no-scheme".into()),
        ("instances", |d| d.scheduling_info.instances = -3),
        ("memory_mb", |d| d.scheduling_info.memory_mb = -1),
        ("disk_mb", |d| d.scheduling_info.disk_mb = -1),
        ("max_pids", |d| d.scheduling_info.max_pids = -1),
        ("annotation", |d| {
            d.scheduling_info.annotation = "a".repeat(10_241)
        }),
        ("routes", |d| {
            d.scheduling_info
                .routes
                .0
                .insert("big".into(), serde_json::Value::String("x".repeat(131_073)));
        }),
        ("action", |d| d.run_info.action = None),
        ("env[0].name", |d| {
            d.run_info.env.insert(0, EnvironmentVariable::new("", "x"))
        }),
        ("cpu_weight", |d| d.run_info.cpu_weight = 101),
        ("ports[0]", |d| d.run_info.ports.insert(0, 0)),
        ("image_password", |d| {
            d.run_info.image_username = "u".into();
            d.run_info.image_password.clear();
        }),
        ("log_rate_limit.bytes_per_second", |d| {
            d.run_info.log_rate_limit = Some(LogRateLimit {
                bytes_per_second: -2,
            })
        }),
        ("check_definition.checks[0].port", |d| {
            d.run_info.check_definition = Some(CheckDefinition {
                checks: vec![Check::default()],
                ..Default::default()
            })
        }),
        ("egress_rules[0].protocol", |d| {
            d.run_info.egress_rules.insert(
                0,
                EgressRule {
                    protocol: "bogus".into(),
                    destinations: vec!["1.2.3.4".into()],
                    ..Default::default()
                },
            )
        }),
        ("volume_mounts[0].mode", |d| {
            d.run_info.volume_mounts.insert(
                0,
                VolumeMount {
                    driver: "nfs".into(),
                    container_dir: "/d".into(),
                    mode: "rwx".into(),
                    shared: SharedDevice {
                        volume_id: "v".into(),
                        mount_config: String::new(),
                    },
                },
            )
        }),
        ("sidecars[0].memory_mb", |d| {
            d.run_info.sidecars.insert(
                0,
                Sidecar {
                    action: Some(RunAction::new("/x", "u").into()),
                    disk_mb: 0,
                    memory_mb: -1,
                },
            )
        }),
    ]
}

/// Breaks the innermost first action of a tree in a way that names `path`.
fn break_action(action: &mut Action, path: &mut String) {
    path.push('.');
    path.push_str(action.type_name());
    match action {
        Action::Run(r) => {
            r.path.clear();
            path.push_str(".path");
        }
        Action::Download(d) => {
            d.to.clear();
            path.push_str(".to");
        }
        Action::Upload(u) => {
            u.user.clear();
            path.push_str(".user");
        }
        Action::Timeout(t) => {
            path.push_str(".action");
            if let Some(a) = t.action.as_deref_mut() {
                break_action(a, path);
            }
        }
        Action::Try(t) => {
            path.push_str(".action");
            if let Some(a) = t.action.as_deref_mut() {
                break_action(a, path);
            }
        }
        Action::EmitProgress(e) => {
            path.push_str(".action");
            if let Some(a) = e.action.as_deref_mut() {
                break_action(a, path);
            }
        }
        Action::Serial(s) => break_list(&mut s.actions, path),
        Action::Parallel(p) => break_list(&mut p.actions, path),
        Action::Codependent(c) => break_list(&mut c.actions, path),
    }
}

fn break_list(actions: &mut [Action], path: &mut String) {
    path.push_str(".actions[0]");
    if let Some(first) = actions.first_mut() {
        break_action(first, path);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_broken_lrp_names_the_broken_field(mut d in desired_lrp(), which in 0usize..19) {
        let breakages = lrp_breakages();
        let (field, breakage) = breakages[which % breakages.len()];
        breakage(&mut d);
        let err = d.validate().expect_err("a broken LRP must be invalid");
        prop_assert!(err.has_field(field), "expected {field} in {err}");
        let needle = format!("Invalid field: {field}");
        prop_assert!(err.to_string().contains(&needle));
    }

    #[test]
    fn a_broken_action_is_named_by_full_path(mut d in desired_lrp()) {
        let mut path = String::from("action");
        if let Some(a) = d.run_info.action.as_mut() {
            break_action(a, &mut path);
        }
        let err = d.validate().expect_err("a broken action must be invalid");
        prop_assert!(err.has_field(&path), "expected {path} in {err}");
    }

    #[test]
    fn a_broken_task_names_the_broken_field(mut t in desire_task_request(), which in 0usize..6) {
        let field = match which {
            0 => { t.task_guid = TaskGuid::new("bad/guid"); "task_guid" }
            1 => { t.domain.clear(); "domain" }
            2 => { t.task_definition.rootfs.clear(); "task_definition.rootfs" }
            3 => { t.task_definition.memory_mb = -5; "task_definition.memory_mb" }
            4 => { t.task_definition.completion_callback_url = "not a url".into(); "task_definition.completion_callback_url" }
            _ => { t.task_definition.action = None; "task_definition.action" }
        };
        let err = t.validate().expect_err("a broken task must be invalid");
        prop_assert!(err.has_field(field), "expected {field} in {err}");
    }

    #[test]
    fn validate_never_panics_on_arbitrary_json(json in arbitrary_json()) {
        // Whatever parses must validate without panicking; what does not parse is fine.
        if let Ok(d) = serde_json::from_value::<DesiredLrp>(json.clone()) {
            let _ = d.validate();
        }
        if let Ok(t) = serde_json::from_value::<DesireTaskRequest>(json.clone()) {
            let _ = t.validate();
        }
        if let Ok(u) = serde_json::from_value::<DesiredLrpUpdate>(json) {
            let _ = u.validate();
        }
    }

    #[test]
    fn validate_never_panics_on_arbitrary_values(
        pg in ".{0,8}", domain in ".{0,4}", rootfs in ".{0,12}", instances in any::<i32>(),
        memory in any::<i32>(), ports in vec(any::<u32>(), 0..3), annotation in ".{0,64}",
        timeout in any::<i64>(), cpu in any::<u32>(), port in any::<u32>(),
    ) {
        let mut d = DesiredLrp::new(pg.as_str(), domain, rootfs, instances, Action::timeout(RunAction::new("", "").into(), timeout));
        d.scheduling_info.memory_mb = memory;
        d.scheduling_info.annotation = annotation;
        d.run_info.ports = ports;
        d.run_info.cpu_weight = cpu;
        d.run_info.check_definition = Some(CheckDefinition { checks: vec![Check::http(port, "")], ..Default::default() });
        let _ = d.validate();
    }
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let known = prop_oneof![
        Just("process_guid"),
        Just("domain"),
        Just("rootfs"),
        Just("instances"),
        Just("action"),
        Just("memory_mb"),
        Just("ports"),
        Just("task_guid"),
        Just("task_definition"),
        Just("run"),
        Just("path"),
        Just("user"),
        Just("serial"),
        Just("actions"),
        Just("timeout_ms"),
        Just("annotation"),
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(serde_json::Value::Array),
            vec((known.clone(), inner), 0..5).prop_map(|kv| {
                let m: BTreeMap<String, serde_json::Value> =
                    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                serde_json::Value::Object(m.into_iter().collect())
            }),
        ]
    })
}
