import Foundation

/// Files of the repository the tests read (README, migrations, shipped templates, scripts, fixtures).
enum RepositoryFiles {
    /// The checkout's root: this file is `Tests/RemasTests/Support/RepositoryFiles.swift`.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func url(_ path: String) -> URL { root.appendingPathComponent(path) }
}
