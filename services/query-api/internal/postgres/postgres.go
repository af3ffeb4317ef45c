// Package postgres is the query-api's storage: the SQL of the query,
// admin and schemas domains, implementing the interfaces they declare.
// Shared tables go through their owners: sessions through pkg/sessions,
// applications and their settings through pkg/auth.
package postgres
