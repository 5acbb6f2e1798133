-- Fixed benchmark data: 20 nodes x 5 resources, a 3-level group tree (Everyone > Users > bench-team > bench-squad),
-- 10 users, limits at every level. Every bench user's password hash is the administrator's ('admin').
INSERT INTO resources (name, description, unit) VALUES
    ('cpu', 'cores', ''), ('mem', 'memory', 'Bytes (IEC)'), ('gpu', 'accelerators', ''), ('disk', 'scratch', 'Bytes (SI)'),
    ('net', 'bandwidth', '');
INSERT INTO nodes (name, description) SELECT 'node' || lpad(n::text, 2, '0'), 'bench node ' || n FROM generate_series(1, 20) n;
INSERT INTO node_resources (node_id, resource_id, amount)
SELECT n.id, r.id, CASE r.name WHEN 'cpu' THEN 64 WHEN 'mem' THEN 549755813888 WHEN 'gpu' THEN 8
                               WHEN 'disk' THEN 4000000000000 ELSE 100 END
FROM nodes n CROSS JOIN resources r;
INSERT INTO groups (name, parent_id) VALUES ('bench-team', 3);
INSERT INTO groups (name, parent_id) SELECT 'bench-squad', id FROM groups WHERE name = 'bench-team';
INSERT INTO users (name, surname, uid, username, password, email, group_id)
SELECT 'Bench', 'User ' || i, 5000 + i, 'bench_user_' || i, (SELECT password FROM users WHERE id = 1),
       'bench' || i || '@example.org',
       CASE WHEN i <= 3 THEN 3 WHEN i <= 6 THEN (SELECT id FROM groups WHERE name = 'bench-team')
            ELSE (SELECT id FROM groups WHERE name = 'bench-squad') END
FROM generate_series(1, 10) i;
-- Limits: Everyone (all nodes, cpu + mem), bench-team (half the nodes, cpu + gpu), bench-squad (5 nodes, cpu), user 5 (gpu).
INSERT INTO limits (name, amount, group_id, resource_id) SELECT 'everyone-' || r.name, 32, 1, r.id FROM resources r WHERE r.name IN ('cpu', 'mem');
INSERT INTO limits (name, amount, group_id, resource_id)
SELECT 'team-' || r.name, 16, (SELECT id FROM groups WHERE name = 'bench-team'), r.id FROM resources r WHERE r.name IN ('cpu', 'gpu');
INSERT INTO limits (name, amount, group_id, resource_id)
SELECT 'squad-cpu', 8, (SELECT id FROM groups WHERE name = 'bench-squad'), id FROM resources WHERE name = 'cpu';
INSERT INTO limits (name, amount, user_id, resource_id)
SELECT 'user5-gpu', 2, (SELECT id FROM users WHERE username = 'bench_user_5'), id FROM resources WHERE name = 'gpu';
INSERT INTO limit_nodes (limit_id, node_id) SELECT l.id, n.id FROM limits l CROSS JOIN nodes n WHERE l.name LIKE 'everyone-%';
INSERT INTO limit_nodes (limit_id, node_id) SELECT l.id, n.id FROM limits l CROSS JOIN nodes n WHERE l.name LIKE 'team-%' AND n.id % 2 = 0;
INSERT INTO limit_nodes (limit_id, node_id) SELECT l.id, n.id FROM limits l CROSS JOIN nodes n WHERE l.name = 'squad-cpu' AND n.id <= 5;
INSERT INTO limit_nodes (limit_id, node_id) SELECT l.id, n.id FROM limits l CROSS JOIN nodes n WHERE l.name = 'user5-gpu' AND n.id <= 10;
-- Only the tables written here (a database-wide ANALYZE warns about every catalog a non-superuser may not analyze).
ANALYZE groups, users, nodes, resources, node_resources, limits, limit_nodes;
