// JSON-RPC against a running service's POST /rpc.
export async function rpc(httpPort: number, method: string, params: unknown = {}, token?: string): Promise<{ result?: any; error?: { code: number; message: string } }> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/rpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return (await res.json()) as { result?: unknown; error?: { code: number; message: string } };
}
