package redis

// handlers maps each implemented keyed command to its handler. The table
// (table_gen.go) gives arity, flags and key positions; Exec checks arity
// before a handler runs, so handlers index their fixed arguments freely.
var handlers = map[string]handler{
	// scripting.go and sort.go register EVAL, SORT and their kin
	// themselves (init there): they call back into the command layer.
	// strings.go
	"get": cmdGet, "set": cmdSet, "setnx": cmdSetNX, "setex": cmdSetEX, "psetex": cmdPSetEX,
	"getset": cmdGetSet, "getdel": cmdGetDel, "getex": cmdGetEx, "mget": cmdMGet, "mset": cmdMSet,
	"msetnx": cmdMSetNX, "incr": cmdIncr, "incrby": cmdIncrBy, "incrbyfloat": cmdIncrByFloat,
	"decr": cmdDecr, "decrby": cmdDecrBy, "append": cmdAppend, "strlen": cmdStrlen,
	"getrange": cmdGetRange, "substr": cmdGetRange, "setrange": cmdSetRange,
	// keys.go
	"del": cmdDel, "unlink": cmdDel, "exists": cmdExists, "touch": cmdExists,
	"expire": cmdExpire, "pexpire": cmdPExpire, "expireat": cmdExpireAt, "pexpireat": cmdPExpireAt,
	"expiretime": cmdExpireTime, "pexpiretime": cmdPExpireTime, "ttl": cmdTTL, "pttl": cmdPTTL,
	"persist": cmdPersist, "type": cmdType, "rename": cmdRename, "copy": cmdCopy, "move": cmdMove, "renamenx": cmdRenameNX,
	// hashes.go
	"hset": cmdHSet, "hsetnx": cmdHSetNX, "hget": cmdHGet, "hmget": cmdHMGet, "hmset": cmdHMSet,
	"hdel": cmdHDel, "hgetall": cmdHGetAll, "hexists": cmdHExists, "hincrby": cmdHIncrBy,
	"hincrbyfloat": cmdHIncrByFloat, "hkeys": cmdHKeys, "hvals": cmdHVals, "hlen": cmdHLen,
	"hstrlen": cmdHStrlen, "hscan": cmdHScan, "hrandfield": cmdHRandField,
	// lists.go
	"lpush": cmdLPush, "rpush": cmdRPush, "lpushx": cmdLPushX, "rpushx": cmdRPushX, "lpop": cmdLPop,
	"rpop": cmdRPop, "lrange": cmdLRange, "llen": cmdLLen, "lindex": cmdLIndex, "lset": cmdLSet,
	"lrem": cmdLRem, "ltrim": cmdLTrim, "linsert": cmdLInsert, "lpos": cmdLPos, "lmove": cmdLMove, "lmpop": cmdLMPop,
	"rpoplpush": cmdRPopLPush,
	// sets.go
	"sadd": cmdSAdd, "srem": cmdHDel, "smembers": cmdSMembers, "sismember": cmdSIsMember,
	"smismember": cmdSMIsMember, "scard": cmdHLen, "spop": cmdSPop, "srandmember": cmdSRandMember,
	"sinter": cmdSInter, "sunion": cmdSUnion, "sdiff": cmdSDiff, "sinterstore": cmdSInterStore,
	"sunionstore": cmdSUnionStore, "sdiffstore": cmdSDiffStore, "smove": cmdSMove, "sscan": cmdSScan,
	"sintercard": cmdSInterCard,
	// zsets.go
	"zadd": cmdZAdd, "zrem": cmdZRem, "zscore": cmdZScore, "zmscore": cmdZMScore, "zincrby": cmdZIncrBy,
	"zcard": cmdHLen, "zcount": cmdZCount, "zrange": cmdZRange, "zrangebyscore": cmdZRangeByScore,
	"zrevrange": cmdZRevRange, "zrevrangebyscore": cmdZRevRangeByScore, "zrangebylex": cmdZRangeByLex,
	"zrevrangebylex": cmdZRevRangeByLex, "zrank": cmdZRank, "zrevrank": cmdZRevRank,
	"zpopmin": cmdZPopMin, "zpopmax": cmdZPopMax, "zmpop": cmdZMPop, "zintercard": cmdZInterCard, "zrangestore": cmdZRangeStore,
	"zunionstore": cmdZUnionStore, "zinterstore": cmdZInterStore, "zscan": cmdZScan,
	"zdiffstore": cmdZDiffStore, "zunion": cmdZUnion, "zinter": cmdZInter, "zdiff": cmdZDiff,
	"zremrangebyrank": cmdZRemRangeByRank, "zremrangebyscore": cmdZRemRangeByScore,
	"zremrangebylex": cmdZRemRangeByLex, "zlexcount": cmdZLexCount, "zrandmember": cmdZRandMember,
	// bitmaps.go
	"setbit": cmdSetBit, "getbit": cmdGetBit, "bitcount": cmdBitCount, "bitpos": cmdBitPos, "bitop": cmdBitOp,
	"bitfield": cmdBitField, "bitfield_ro": cmdBitFieldRO,
	// hll.go
	"pfadd": cmdPFAdd, "pfcount": cmdPFCount, "pfmerge": cmdPFMerge,
	// geo.go
	"geoadd": cmdGeoAdd, "geopos": cmdGeoPos, "geodist": cmdGeoDist, "geohash": cmdGeoHash,
	"geosearch": cmdGeoSearch, "geosearchstore": cmdGeoSearchStore, "georadius": cmdGeoRadius,
	"georadiusbymember": cmdGeoRadiusByMember, "georadius_ro": cmdGeoRadiusRO,
	"georadiusbymember_ro": cmdGeoRadiusByMemberRO,
	// lcs.go, object.go
	"lcs": cmdLCS, "object": cmdObject, "memory": cmdMemory,
	// streams.go, streamgroups.go
	"xadd": cmdXAdd, "xlen": cmdXLen, "xrange": cmdXRange, "xrevrange": cmdXRevRange, "xdel": cmdXDel,
	"xtrim": cmdXTrim, "xread": cmdXRead, "xreadgroup": cmdXReadGroup, "xsetid": cmdXSetID, "xinfo": cmdXInfo,
	"xgroup": cmdXGroup, "xack": cmdXAck, "xpending": cmdXPending, "xclaim": cmdXClaim, "xautoclaim": cmdXAutoClaim,
}
