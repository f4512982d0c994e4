# ringledger ring: 4 shards, 46 points (docs/ring.md)
epoch 1
points_per_weight 128
shard s1 tcp://127.0.0.1:7101 weight 1
shard s2 tcp://127.0.0.1:7102 weight 1
shard s3 tcp://127.0.0.1:7103 weight 1
shard s4 tcp://127.0.0.1:7104 weight 1
point 01eabd10420bd54e s2
point 034ffd976e2e5d20 s1
point 06ad89b3f51d5576 s2
point 137c2d041d02aab5 s4
point 176cea58b6882eac s2
point 1a1840eec7250a06 s1
point 1ef01cf80505f7a6 s2
point 21c213bd3ca0aaab s4
point 35bcde02437a790e s3
point 3a0a920fbc26aa97 s2
point 3c265a9f754ef055 s1
point 4470c823c0fd7cba s4
point 48815da69c82c44f s1
point 4dffaf4e69de5bb3 s2
point 54561881b37e515d s1
point 58c66203392b92a2 s2
point 5a6bb4b49bea0602 s1
point 5e95d4d9a374fdad s2
point 6755f8b5af38deea s4
point 6c3e75feec6156c2 s2
point 6cbd082e93497196 s4
point 74fe0d5e577d22d1 s1
point 7923083e61d84def s2
point 7d3308329c0347de s1
point 8d6518b63d04cf5a s4
point 8e65281e6a370ab5 s1
point 935627736983c7c8 s2
point a13cd238814f92df s3
point a5ae76c7fa190b52 s2
point bb2cb1198131a73c s3
point bde5c3ba6d4cb631 s1
point bdf136ba2221c81b s4
point c1044f71fea2c07e s1
point c7ed9f108e8725d9 s4
point d014ed00a36f4732 s1
point d6585a16e2be8855 s2
point dd6e501ce95f4e9b s1
point e4150e9f3d553c51 s4
point e616c6192fd77424 s1
point e618a60b3e449bc8 s4
point e9476a8012d90d02 s1
point ea4e3b446ce0682d s4
point ef9c7c272ce51392 s2
point f1355ec4de453457 s1
point f9d5af693886fef3 s3
point fe791bed328f061c s1
