// The plugin's REST API as the web app reads it (the issue 13 contract,
// documented in the README). Times are RFC 3339 strings; a field the server
// omits when it has nothing to say is optional here.

/** A network's name: mattermost, xmpp, matrix, slack (more may come). */
export type Network = string;

/** A bridge's connection state (bridge.State on the server): disabled, connecting, connected, disconnected, failed... */
export type ConnectionState = string;

export interface QueueStatus {
    link: string;
    destination: Network;
    depth: number;
    oldest_queued_age_seconds: number;
}

export interface NetworkStatus {
    network: Network;
    title: string;
    enabled: boolean;
    state: ConnectionState;
    since?: string;
    last_error?: string;
    last_event?: string;
    reconnect_attempts: number;
    detail?: string;
    queues?: QueueStatus[];
    queue_depth: number;
    relayed: {to_mattermost: number; from_mattermost: number};
    dropped: {to_mattermost: Record<string, number>; from_mattermost: Record<string, number>};
    remote_users: number;
}

export interface StatusReport {
    networks: NetworkStatus[];
    links: number;
    node?: string;
}

/** A link's health: ok, degraded or down. */
export type LinkHealth = string;

export interface LinkedRoom {
    network: Network;
    room: string;
    name?: string;
    state: ConnectionState;
    archived?: boolean;
    last_in?: string;
    last_out?: string;
}

export interface Link {
    channel_id: string;
    channel_name: string;
    channel_display_name: string;
    team_id: string;
    team_name: string;
    since?: string;
    rooms: LinkedRoom[];
    last_in?: string;
    last_out?: string;
    health: LinkHealth;
}

export interface LinksReport {
    links: Link[];
}

/** What a channel member may see of the channel's links. */
export interface ChannelLinks {
    channel_id: string;
    rooms: Array<Pick<LinkedRoom, 'network' | 'room' | 'name' | 'state'>>;
}

export interface DoctorCheck {
    name: string;
    passed: boolean;
    detail: string;
    fix?: string;
    duration_ms?: number;
}

export interface DoctorReport {
    network: Network;
    passed: boolean;
    started?: string;
    duration_ms?: number;
    checks: DoctorCheck[];
}

export interface UnlinkResult {
    unlinked: Network[];
}
