-- A small database in the schema of the original REMAS (written from its documented table descriptions), with rows
-- the original let in that remas refuses. Loaded into a schema of its own by
-- ImportTests; user passwords are set by the test (bcrypt hashes made there).
CREATE TYPE unit AS ENUM ('NONE', 'BYTES_SI', 'BYTES_IEC');
CREATE TYPE taskstatus AS ENUM ('scheduled', 'running', 'finished');
CREATE TYPE eventtype AS ENUM ('task_start', 'task_end', 'other');
CREATE TYPE notificationtype AS ENUM ('task_start', 'task_end', 'grafana_resource_exceedance_task',
                                      'grafana_resource_exceedance_general', 'other');

CREATE TABLE "group" (id serial PRIMARY KEY, name varchar NOT NULL UNIQUE, description varchar,
                      users_share_statistics boolean NOT NULL, parent_id integer REFERENCES "group" (id));
CREATE TABLE "user" (id serial PRIMARY KEY, name varchar, surname varchar, uid integer NOT NULL UNIQUE,
                     username varchar NOT NULL UNIQUE, password varchar NOT NULL, email varchar NOT NULL UNIQUE,
                     group_id integer NOT NULL REFERENCES "group" (id));
CREATE TABLE node (id serial PRIMARY KEY, name varchar NOT NULL UNIQUE, description varchar);
CREATE TABLE resource (id serial PRIMARY KEY, name varchar NOT NULL UNIQUE, description varchar, unit unit NOT NULL);
CREATE TABLE nodeprovidesresource (node_id integer REFERENCES node (id) ON DELETE CASCADE,
                                   resource_id integer REFERENCES resource (id) ON DELETE CASCADE,
                                   amount bigint NOT NULL, PRIMARY KEY (node_id, resource_id));
CREATE TABLE resourcealias (id serial PRIMARY KEY, name varchar NOT NULL UNIQUE, description varchar);
CREATE TABLE resourcehasalias (resource_id integer REFERENCES resource (id) ON DELETE CASCADE,
                               alias_id integer REFERENCES resourcealias (id) ON DELETE CASCADE, PRIMARY KEY (resource_id, alias_id));
CREATE TABLE "limit" (id serial PRIMARY KEY, name varchar NOT NULL, description varchar, amount bigint NOT NULL,
                      user_id integer REFERENCES "user" (id) ON DELETE CASCADE,
                      group_id integer REFERENCES "group" (id) ON DELETE CASCADE,
                      resource_id integer NOT NULL REFERENCES resource (id) ON DELETE CASCADE);
CREATE TABLE nodeislimitedby (limit_id integer REFERENCES "limit" (id) ON DELETE CASCADE,
                              node_id integer REFERENCES node (id) ON DELETE CASCADE, PRIMARY KEY (limit_id, node_id));
CREATE TABLE tasktag (id serial PRIMARY KEY, name varchar NOT NULL, description varchar,
                      user_id integer NOT NULL REFERENCES "user" (id) ON DELETE CASCADE);
CREATE TABLE task (id serial PRIMARY KEY, name varchar NOT NULL, description varchar, start_time timestamp NOT NULL,
                   end_time timestamp NOT NULL, status taskstatus NOT NULL DEFAULT 'scheduled',
                   owner_id integer NOT NULL REFERENCES "user" (id) ON DELETE CASCADE);
CREATE TABLE resourceallocation (task_id integer REFERENCES task (id) ON DELETE CASCADE,
                                 node_id integer REFERENCES node (id) ON DELETE CASCADE,
                                 resource_id integer REFERENCES resource (id) ON DELETE CASCADE,
                                 amount bigint NOT NULL, PRIMARY KEY (task_id, node_id, resource_id));
CREATE TABLE taskhastag (task_id integer REFERENCES task (id) ON DELETE CASCADE,
                         tag_id integer REFERENCES tasktag (id) ON DELETE CASCADE, PRIMARY KEY (task_id, tag_id));
CREATE TABLE notification (id serial PRIMARY KEY, name varchar NOT NULL UNIQUE, description varchar, time_offset integer,
                           notification_template text, type notificationtype NOT NULL DEFAULT 'other', default_amount bigint,
                           owner_id integer REFERENCES "user" (id) ON DELETE CASCADE,
                           resource_id integer REFERENCES resource (id) ON DELETE CASCADE);
CREATE TABLE userhasnotification (user_id integer REFERENCES "user" (id) ON DELETE CASCADE,
                                  notification_id integer REFERENCES notification (id) ON DELETE CASCADE,
                                  PRIMARY KEY (user_id, notification_id));
CREATE TABLE grouphasnotification (group_id integer REFERENCES "group" (id) ON DELETE CASCADE,
                                   notification_id integer REFERENCES notification (id) ON DELETE CASCADE,
                                   PRIMARY KEY (group_id, notification_id));
CREATE TABLE event (id serial PRIMARY KEY, name varchar NOT NULL, description varchar, time timestamp NOT NULL,
                    type eventtype NOT NULL, task_id integer NOT NULL REFERENCES task (id) ON DELETE CASCADE,
                    notification_id integer REFERENCES notification (id) ON DELETE CASCADE);
CREATE TABLE resourcepaneltemplate (id serial PRIMARY KEY, template text,
                                    resource_id integer NOT NULL REFERENCES resource (id) ON DELETE CASCADE);

INSERT INTO "group" VALUES (1, 'Everyone', NULL, true, NULL), (2, 'Administrators', NULL, true, 1),
    (3, 'Users', NULL, true, 1), (4, 'Physics', 'the physics lab', false, 1), (5, 'Theory', NULL, true, 4);
INSERT INTO "user" VALUES (1, 'System', 'Administrator', 0, 'administrator', 'x', 'administrator@localhost', 2),
    (2, 'Alice', 'Novak', 1001, 'alice', 'x', 'alice@lab.example', 5),
    (7, NULL, NULL, 1007, 'bob', 'x', 'bob@lab.example', 3);
INSERT INTO node VALUES (1, 'gpu01', 'the big one'), (2, 'cpu02', NULL);
INSERT INTO resource VALUES (1, 'cpu', 'cores', 'NONE'), (2, 'mem', NULL, 'BYTES_IEC'), (3, 'disk', NULL, 'BYTES_SI');
INSERT INTO nodeprovidesresource VALUES (1, 1, 32), (1, 2, 137438953472), (2, 1, 16), (2, 3, 0);
INSERT INTO resourcealias VALUES (1, 'cores', NULL), (2, 'ram', 'memory');
INSERT INTO resourcehasalias VALUES (1, 1), (2, 2);
-- Limit 2 lost its group in the original's group delete: no owner at all.
INSERT INTO "limit" VALUES (1, 'lab cpu', NULL, 8, NULL, 4, 1), (2, 'orphan', NULL, 4, NULL, NULL, 1),
    (3, 'alice mem', NULL, 68719476736, 2, NULL, 2), (4, 'both', NULL, 1, 2, 4, 1);
INSERT INTO nodeislimitedby VALUES (1, 1), (1, 2), (2, 1), (3, 1), (4, 2);
INSERT INTO tasktag VALUES (1, 'thesis', NULL, 2), (2, 'misc', 'odds and ends', 7);
-- Task 1 lies ahead; task 2 ended long ago but the original's scheduler never moved it on; task 0 has the id the
-- original's create-or-update took as "new" once; task 4 reserves only a zero amount; task 5 ends before it starts.
INSERT INTO task VALUES (1, 'training run', 'epoch 1-100', '2099-03-01 10:00', '2099-03-01 18:00', 'scheduled', 2),
    (2, 'old sweep', NULL, '2020-01-01 08:00', '2020-01-01 09:30', 'scheduled', 2),
    (0, 'zero', NULL, '2099-01-01 10:00', '2099-01-01 11:00', 'scheduled', 7),
    (4, 'nothing', NULL, '2099-01-02 10:00', '2099-01-02 11:00', 'scheduled', 7),
    (5, 'backwards', NULL, '2099-01-03 11:00', '2099-01-03 10:00', 'scheduled', 7),
    (6, 'bob job', NULL, '2099-02-01 00:00', '2099-02-02 00:00', 'scheduled', 7);
INSERT INTO resourceallocation VALUES (1, 1, 1, 8), (1, 1, 2, 68719476736), (2, 2, 1, 4), (0, 1, 1, 1), (4, 1, 1, 0),
    (5, 1, 1, 1), (6, 2, 1, 2), (6, 1, 2, 0);
INSERT INTO taskhastag VALUES (1, 1), (0, 2), (6, 2);
INSERT INTO notification VALUES (1, 'starts in an hour', NULL, 3600, 'Hello ${user_name}, ${task_name} starts at ${task_start}.',
        'task_start', NULL, NULL, NULL),
    (2, 'cpu alert', NULL, NULL, '{"title": "${user_username} on ${node_name}"}', 'grafana_resource_exceedance_task', 4, 2, 1);
INSERT INTO grouphasnotification VALUES (4, 1);
INSERT INTO userhasnotification VALUES (2, 2), (7, 1);
INSERT INTO event VALUES (1, 'training run start', 'Start of training run', '2099-03-01 10:00', 'task_start', 1, NULL);
INSERT INTO resourcepaneltemplate VALUES (1, '{}', 1);
SELECT setval(pg_get_serial_sequence('"group"', 'id'), 5), setval(pg_get_serial_sequence('"user"', 'id'), 7),
       setval(pg_get_serial_sequence('task', 'id'), 6);
