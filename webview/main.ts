// The webview's browser side arrives with the extension issue.
export {};
