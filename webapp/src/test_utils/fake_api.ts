// A stand-in for the plugin's HTTP API in the components' tests: answers
// fetch from a table of routes and records every request. The real API is
// exercised end to end by the browser test (server/webe2e).

export interface FakeAnswer {
    status?: number;
    body?: unknown;
    /** A body sent as is instead of JSON. */
    text?: string;
}

export type Route = FakeAnswer | ((req: RecordedRequest) => FakeAnswer | Promise<FakeAnswer>);

export interface RecordedRequest {
    method: string;
    url: string;
    headers: Record<string, string>;
    credentials?: RequestCredentials;
}

export interface FakeAPI {
    /** Routes by "METHOD /path" (the path after /plugins/<id>); change them between polls. */
    routes: Record<string, Route>;
    requests: RecordedRequest[];
    /** The requests to method and path. */
    calls: (method: string, path: string) => RecordedRequest[];
}

const prefix = '/plugins/com.mattermost.bridge';

export function installFakeAPI(routes: Record<string, Route>): FakeAPI {
    const api: FakeAPI = {
        routes,
        requests: [],
        calls: (method, path) => api.requests.filter((r) => r.method === method && r.url.endsWith(prefix + path)),
    };
    const fetchImpl = async (input: RequestInfo | URL, init: RequestInit = {}) => {
        const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
        const req: RecordedRequest = {
            method: init.method ?? 'GET',
            url,
            headers: {...(init.headers as Record<string, string>)},
            credentials: init.credentials,
        };
        api.requests.push(req);
        const i = url.indexOf(prefix);
        const route = i < 0 ? undefined : api.routes[`${req.method} ${url.slice(i + prefix.length)}`];
        const answer: FakeAnswer = route === undefined ? {status: 404, text: '404 page not found\n'} : typeof route === 'function' ? await route(req) : route;
        const status = answer.status ?? 200;
        const text = answer.text ?? JSON.stringify(answer.body ?? {});
        return {
            ok: status >= 200 && status < 300,
            status,
            statusText: '',
            json: () => Promise.resolve(JSON.parse(text) as unknown),
            text: () => Promise.resolve(text),
        } as Response;
    };
    (globalThis as {fetch?: unknown}).fetch = fetchImpl;
    return api;
}
