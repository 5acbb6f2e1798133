/// A resource on a node: the key of capacities, reservations and effective limits.
struct NodeResource: Hashable, Sendable {
    let node: Int
    let resource: Int
}
