/*  keys.h: CURVE keys of a process, and the key sets of the four roles
    (docs/security.md).

    Every process has a long-term CURVE keypair stored as czmq certificate
    files (zcert): a public certificate that may be copied anywhere, and a
    secret certificate (both keys) that must be readable by its owner
    alone. A key-set directory holds the public certificates of everyone
    allowed in, one folder per role:

        KEYDIR/client/NAME.key     clients (create, lookup, status)
        KEYDIR/router/NAME.key     routers (the same operations, for clients)
        KEYDIR/shard/NAME.key      shards (two-phase operations with peers)
        KEYDIR/admin/NAME.key      operators (load_ring, resolve, in_doubt, audit)
        KEYDIR/private/NAME.key_secret  secret certificates written by
                                        rl_keygen (mode 0600, folder 0700);
                                        each one belongs on one host only

    A role is the set of public keys in its folder; one key may hold
    several roles (the same file in several folders). Only files whose
    names end in ".key" are read from a role folder.

    INVARIANTS
    1. rl_cert_load refuses a secret file that is not a regular file, that
       group or others may read or write, or that holds no secret key.
    2. A key set is replaced whole or not at all: a refresh that fails
       keeps the sets it had, so a half-written folder never locks
       everyone out (nor lets anyone in).
    3. rl_keygen never overwrites a secret certificate.

    LIMITS
    RL_KEYS_MAX public keys in one key-set directory, all roles together.
*/
#ifndef RL_KEYS_H
#define RL_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "proto.h"

#define RL_KEY_TEXT_SIZE 41    //  a Z85 public key (40 characters) and its NUL
#define RL_KEYS_MAX      65536 //  public keys in one key-set directory

//  The roles are bits of a mask (rl_role_t, proto.h). rl_role_name and
//  rl_role_parse map the single bits to and from their folder names.

const char *rl_role_name (unsigned role);  //  "client"...; "?" for no single role
unsigned rl_role_parse (const char *name); //  a role bit, 0 if not a role name
//  "client,admin" for a mask, "-" for none; out holds at least 32 bytes.
const char *rl_roles_text (unsigned mask, char *out, size_t size);

//  Own keypair ----------------------------------------------------------------
//  Loads a secret certificate file. NULL with err set ("...: chmod 600 it")
//  on failure (invariant 1).
zcert_t *rl_cert_load (const char *path, char *err, size_t err_size);

//  A server's public key: SPEC is the path of a certificate file (public or
//  secret) if such a file exists, else 40 Z85 characters. 0 with out set,
//  -1 with err set.
int rl_key_resolve (const char *spec, char out[RL_KEY_TEXT_SIZE], char *err, size_t err_size);

//  1 if text is a Z85 public key (40 characters that decode).
int rl_key_valid (const char *text);

//  Writes a new keypair: KEYDIR/ROLE/NAME.key and
//  KEYDIR/private/NAME.key_secret (mode 0600). Folders are created. The
//  public key is copied to key_out (if not NULL). -1 with err set if the
//  role or name is bad, the secret file exists, or a write failed.
int rl_keygen (const char *keydir, const char *role, const char *name,
               char key_out[RL_KEY_TEXT_SIZE], char *err, size_t err_size);

//  Key sets -------------------------------------------------------------------
typedef struct rl_keyset_t rl_keyset_t;

//  Reads KEYDIR's role folders (a missing folder is an empty role). NULL
//  with err set if KEYDIR is not a readable directory or holds too many keys.
rl_keyset_t *rl_keyset_new (const char *keydir, char *err, size_t err_size);
void rl_keyset_destroy (rl_keyset_t **self_p);

//  The roles of a Z85 public key (a mask), 0 if it is in no role.
unsigned rl_keyset_roles (rl_keyset_t *self, const char *key);
size_t rl_keyset_size (rl_keyset_t *self); //  distinct keys

//  Re-reads the folders if any of them changed (modification time, or
//  force). 1 reloaded, 0 unchanged, -1 failed (err set; the old sets stay).
int rl_keyset_refresh (rl_keyset_t *self, int force, char *err, size_t err_size);

#endif
