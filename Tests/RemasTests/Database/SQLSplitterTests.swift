import Foundation
import PostgresNIO
import Testing

@testable import Remas

@Suite struct SQLSplitterTests {
    @Test func splitsOnSemicolons() {
        #expect(SQLSplitter.split("SELECT 1; SELECT 2;\n\n") == ["SELECT 1", "SELECT 2"])
    }

    @Test func ignoresSemicolonsInStringsIdentifiersAndComments() {
        let sql = """
            -- a comment; with a semicolon
            INSERT INTO t VALUES ('a;b', 'it''s; fine', E'x\\';y');
            /* block; /* nested; */ still comment; */
            SELECT "weird;name" FROM t;
            """
        let parts = SQLSplitter.split(sql)
        #expect(parts.count == 2)
        #expect(parts[0].hasPrefix("INSERT INTO t VALUES ('a;b', 'it''s; fine', E'x\\';y')"))
        #expect(parts[1] == "SELECT \"weird;name\" FROM t")
    }

    @Test func keepsDollarQuotedBodies() {
        let sql = """
            CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;
            CREATE FUNCTION g() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 2; END; $body$;
            SELECT $1;
            """
        let parts = SQLSplitter.split(sql)
        #expect(parts.count == 3)
        #expect(parts[0].hasSuffix("$$ SELECT 1; $$"))
        #expect(parts[1].hasSuffix("$body$ BEGIN RETURN 2; END; $body$"))
        #expect(parts[2] == "SELECT $1")
    }

    @Test func dropsCommentOnlyPieces() {
        #expect(SQLSplitter.split("-- only a comment\n;\n/* x */;").isEmpty)
    }

    @Test func realMigrationsSplitCleanly() throws {
        let migrator = try Migrator(directory: TestDatabase.migrationsPath)
        #expect(!migrator.files.isEmpty)
        for file in migrator.files {
            #expect(!SQLSplitter.split(file.sql).isEmpty)
        }
    }
}
